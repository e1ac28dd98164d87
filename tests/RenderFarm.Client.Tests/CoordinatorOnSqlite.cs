using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace RenderFarm.Client.Tests;

/// <summary>
/// The coordinator host in-process on SQLite, the in-memory bus and a temporary image folder, without workers:
/// jobs stay queued, which is what the API tests of the client need (the embedded-farm tests render for real).
/// </summary>
public sealed class CoordinatorOnSqlite : WebApplicationFactory<Program>
{
    private readonly string _folder = Directory.CreateTempSubdirectory("rf-client-tests-").FullName;

    public RenderFarmClient CreateFarmClient() => new(CreateClient());

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Database:Provider", "Sqlite");
        builder.UseSetting("Database:SqlitePath", Path.Combine(_folder, "renderfarm.db"));
        builder.UseSetting("Bus:Transport", "InMemory");
        builder.UseSetting("Storage:Provider", "Local");
        builder.UseSetting("Storage:LocalRoot", Path.Combine(_folder, "artifacts"));
        builder.UseSetting("Coordinator:Dispatcher:PollInterval", "00:00:00.100");
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        builder.UseSetting("Coordinator:Auth:RequireApiKeys", "false");
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        // WebApplicationFactory reaches here from both DisposeAsync and Dispose: delete once.
        if (disposing && Directory.Exists(_folder))
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(_folder, recursive: true);
        }
    }
}
