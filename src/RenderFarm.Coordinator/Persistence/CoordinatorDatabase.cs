using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Coordinator.Options;

namespace RenderFarm.Coordinator.Persistence;

/// <summary>Schema management for the coordinator's database, shared by the host's start and <c>renderfarm db migrate</c>.</summary>
public static class CoordinatorDatabase
{
    /// <summary>
    /// Applies every pending migration of the configured provider (creating the database, or the SQLite file and
    /// its folder, when missing). Safe to run from several coordinators at once: EF Core takes a migration lock.
    /// </summary>
    /// <param name="services">A provider built by <c>AddCoordinator</c>.</param>
    /// <param name="cancellationToken">Stops the migration.</param>
    public static async Task MigrateAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.GetRequiredService<IOptions<DatabaseOptions>>().Value;
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        if (options.Provider == DatabaseProvider.Sqlite)
        {
            var folder = Path.GetDirectoryName(Path.GetFullPath(options.SqlitePath));
            if (!string.IsNullOrEmpty(folder))
            {
                Directory.CreateDirectory(folder);
            }
        }

        await db.Database.MigrateAsync(cancellationToken);

        if (options.Provider == DatabaseProvider.Sqlite)
        {
            // WAL lets the API read while a consumer writes; the setting is stored in the file, so once is enough.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }
    }
}

/// <summary>Migrates at start (before the dispatcher and the consumers run) unless <c>Database:MigrateOnStart</c> is false.</summary>
internal sealed class DatabaseMigrationService(IServiceProvider services, IOptions<DatabaseOptions> options) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>
        options.Value.MigrateOnStart ? CoordinatorDatabase.MigrateAsync(services, cancellationToken) : Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
