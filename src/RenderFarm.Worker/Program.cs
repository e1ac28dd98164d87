using Microsoft.Extensions.Hosting;
using RenderFarm.Worker.Extensions;

var builder = Host.CreateApplicationBuilder(args);
builder.AddRenderFarmWorker();
await builder.Build().RunAsync();
