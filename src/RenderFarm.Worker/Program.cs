using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using RenderFarm.Worker.Extensions;

var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddCommandLine(args, WorkerExtensions.CommandLineSwitches());
builder.AddRenderFarmWorker();
await builder.Build().RunAsync();
