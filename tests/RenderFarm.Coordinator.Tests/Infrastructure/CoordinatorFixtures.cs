using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using RenderFarm.Coordinator.Persistence;

namespace RenderFarm.Coordinator.Tests.Infrastructure;

/// <summary>A running coordinator for one test class, with a bus probe standing in for workers.</summary>
public abstract class CoordinatorFixture : IAsyncLifetime
{
    public CoordinatorFactory Factory { get; private set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public BusProbe Probe { get; } = new();

    /// <summary>"Postgres" or "Sqlite", for messages.</summary>
    public abstract string Provider { get; }

    /// <summary>Runs <paramref name="query"/> on a database context of its own scope, as a test reads the coordinator's tables.</summary>
    public async Task<T> QueryAsync<T>(Func<CoordinatorDbContext, Task<T>> query)
    {
        ArgumentNullException.ThrowIfNull(query);
        await using var scope = Factory.Services.CreateAsyncScope();
        return await query(scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>());
    }

    public virtual async Task InitializeAsync()
    {
        var settings = new Dictionary<string, string?>(await DatabaseSettingsAsync());
        foreach (var (key, value) in Settings)
        {
            settings[key] = value;
        }

        Factory = new CoordinatorFactory(settings);
        Client = Factory.CreateClient();
        await Probe.ConnectAsync(Factory.Services);
    }

    public virtual async Task DisposeAsync()
    {
        Client?.Dispose();
        if (Factory is not null)
        {
            await Factory.DisposeAsync();
        }
    }

    protected abstract Task<IReadOnlyDictionary<string, string?>> DatabaseSettingsAsync();

    /// <summary>Settings of this fixture's coordinator beyond <see cref="CoordinatorFactory"/>'s and the database's.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>();
}

/// <summary>The coordinator on the real PostgreSQL of <c>deploy/local/services</c>, in a database of its own that is dropped afterwards.</summary>
public class PostgresCoordinatorFixture : CoordinatorFixture
{
    private readonly string _database = "rf_coord_test_" + Guid.NewGuid().ToString("N");
    private string? _server;

    public override string Provider => "Postgres";

    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseSettingsAsync() => CreateDatabaseAsync();

    /// <summary>Creates this fixture's database and returns the settings that point the coordinator at it.</summary>
    public async Task<IReadOnlyDictionary<string, string?>> CreateDatabaseAsync()
    {
        _server = LocalServices.Postgres;
        try
        {
            await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_server) { Database = "postgres" }.ConnectionString);
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{_database}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException ex)
        {
            throw new InvalidOperationException(
                $"PostgreSQL at '{_server}' is not reachable ({ex.Message}); run `deploy/local/services start` first.", ex);
        }

        return new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Postgres",
            ["ConnectionStrings:RenderFarm"] = new NpgsqlConnectionStringBuilder(_server) { Database = _database }.ConnectionString,
        };
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await DropDatabaseAsync();
    }

    /// <summary>Drops this fixture's database, if it was created.</summary>
    public async Task DropDatabaseAsync()
    {
        if (_server is null)
        {
            return;
        }

        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_server) { Database = "postgres" }.ConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_database}\" WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }
}

/// <summary>The coordinator on an embedded SQLite file in a temporary folder, as <c>renderfarm serve</c> runs it.</summary>
public class SqliteCoordinatorFixture : CoordinatorFixture
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "rf-coord-sqlite", Guid.NewGuid().ToString("N"));

    public override string Provider => "Sqlite";

    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseSettingsAsync() =>
        Task.FromResult<IReadOnlyDictionary<string, string?>>(new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Sqlite",
            ["Database:SqlitePath"] = Path.Combine(_folder, "renderfarm.db"),
        });

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }
}
