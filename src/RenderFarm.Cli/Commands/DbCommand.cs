using System.CommandLine;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using RenderFarm.Coordinator.Extensions;
using RenderFarm.Coordinator.Persistence;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm db migrate</c>: applies the coordinator's migrations, for operators who run coordinators with <c>Database:MigrateOnStart=false</c>.</summary>
internal static class DbCommand
{
    public const string PostgresEnvironmentVariable = "RENDERFARM_POSTGRES";

    public static Command Create()
    {
        var sqlite = new Option<string?>("--sqlite") { Description = "Migrate this SQLite file (created when missing), e.g. the embedded farm's DATA/renderfarm.db." };
        var postgres = new Option<string?>("--postgres") { Description = $"Npgsql connection string (default: ${PostgresEnvironmentVariable})." };
        var migrate = new Command("migrate", $"Apply every pending migration to PostgreSQL (${PostgresEnvironmentVariable} or --postgres) or to a SQLite file (--sqlite).") { sqlite, postgres };
        migrate.SetAction((result, cancellationToken) => MigrateAsync(result, result.GetValue(sqlite), result.GetValue(postgres), cancellationToken));
        return new Command("db", "Database administration.") { migrate };
    }

    private static async Task<int> MigrateAsync(ParseResult result, string? sqlite, string? postgres, CancellationToken cancellationToken)
    {
        postgres ??= Environment.GetEnvironmentVariable(PostgresEnvironmentVariable) is { Length: > 0 } env ? env : null;
        if (sqlite is not null && result.GetValue<string?>("--postgres") is not null)
        {
            return result.Fail(ExitCodes.InvalidInput, "give either --sqlite or --postgres, not both.");
        }

        if (sqlite is null && postgres is null)
        {
            return result.Fail(ExitCodes.InvalidInput, $"no database: set ${PostgresEnvironmentVariable} (`eval \"$(deploy/local/services start)\"` does), or give --postgres or --sqlite PATH.");
        }

        using var host = BuildHost(sqlite is not null ? Path.GetFullPath(sqlite) : null, postgres);
        var target = sqlite is not null ? Path.GetFullPath(sqlite) : "PostgreSQL";
        try
        {
            await CoordinatorDatabase.MigrateAsync(host.Services, cancellationToken);
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or ArgumentException or IOException)
        {
            return result.Fail(ExitCodes.Failure, $"migrating {target} failed: {ex.Message}");
        }

        result.Out().WriteLine($"migrated {target}: the schema is up to date.");
        return ExitCodes.Success;
    }

    /// <summary>
    /// A host with the coordinator's services on one database (a SQLite file, else PostgreSQL), never started: what
    /// the commands that work on a farm's database (<c>db migrate</c>, <c>keys</c>) resolve their services from.
    /// </summary>
    internal static IHost BuildHost(string? sqlitePath, string? postgres)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Database:MigrateOnStart"] = "false",

            // AddCoordinator registers the bus and the store too; they are never started here, but their options
            // are bound, so they get settings that need nothing.
            ["Bus:Transport"] = "InMemory",
            ["Storage:Provider"] = "Local",
            ["Storage:LocalRoot"] = Path.GetTempPath(),
        };
        if (sqlitePath is not null)
        {
            settings["Database:Provider"] = "Sqlite";
            settings["Database:SqlitePath"] = sqlitePath;
        }
        else
        {
            settings["Database:Provider"] = "Postgres";
            settings["ConnectionStrings:RenderFarm"] = postgres;
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddCoordinator();
        return builder.Build();
    }
}
