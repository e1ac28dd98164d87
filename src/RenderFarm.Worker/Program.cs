using Microsoft.Extensions.Configuration;
using Microsoft.AspNetCore.Builder;
using RenderFarm.Telemetry;
using RenderFarm.Worker.Extensions;

var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddCommandLine(args, WorkerExtensions.CommandLineSwitches());
builder.AddRenderFarmWorkerHost();
var app = builder.Build();
app.MapRenderFarmHealth();
await app.RunAsync();
