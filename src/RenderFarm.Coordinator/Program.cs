using RenderFarm.Coordinator.Extensions;
using RenderFarm.Dashboard;
using RenderFarm.Telemetry;

var builder = WebApplication.CreateBuilder(args);
builder.AddRenderFarmTelemetry("renderfarm-coordinator");
builder.AddCoordinator();

var app = builder.Build();
app.MapRenderFarmHealth();
app.MapCoordinatorApi();
app.MapDashboard();
app.Run();

/// <summary>The coordinator host; public so tests can start it with <c>WebApplicationFactory&lt;Program&gt;</c>.</summary>
public partial class Program;
