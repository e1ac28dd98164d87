using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.Options;

/// <summary>Which database holds the farm's state.</summary>
public enum DatabaseProvider
{
    /// <summary>PostgreSQL: the distributed farm (several coordinators may share it).</summary>
    Postgres,

    /// <summary>An embedded SQLite file: the single-process farm (<c>renderfarm serve</c>); one coordinator only.</summary>
    Sqlite,
}

/// <summary>Database settings, bound from the <c>Database</c> section.</summary>
/// <remarks>
/// The PostgreSQL connection string is <c>ConnectionStrings:RenderFarm</c>, or the <c>RENDERFARM_POSTGRES</c>
/// variable that <c>deploy/local/services start</c> exports.
/// </remarks>
public sealed class DatabaseOptions
{
    public const string SectionName = "Database";

    /// <summary>Name of the connection string (<c>ConnectionStrings:RenderFarm</c>).</summary>
    public const string ConnectionStringName = "RenderFarm";

    /// <summary>Environment variable (also read as a configuration key) used when the connection string is unset.</summary>
    public const string PostgresEnvironmentVariable = "RENDERFARM_POSTGRES";

    /// <summary>Where the embedded database lives when <see cref="SqlitePath"/> is unset.</summary>
    public const string DefaultSqlitePath = "renderfarm.db";

    public DatabaseProvider Provider { get; set; } = DatabaseProvider.Postgres;

    /// <summary>File of the SQLite database; created with its folder when missing.</summary>
    public string SqlitePath { get; set; } = DefaultSqlitePath;

    /// <summary>Apply pending migrations when the host starts; operators who migrate by hand (<c>renderfarm db migrate</c>) turn it off.</summary>
    public bool MigrateOnStart { get; set; } = true;

    /// <summary>Resolved PostgreSQL connection string; filled from configuration after binding.</summary>
    public string? ConnectionString { get; set; }
}

internal sealed class DatabaseOptionsValidator : IValidateOptions<DatabaseOptions>
{
    public ValidateOptionsResult Validate(string? name, DatabaseOptions options)
    {
        var failures = new List<string>();
        if (!Enum.IsDefined(options.Provider))
        {
            failures.Add($"{DatabaseOptions.SectionName}:{nameof(DatabaseOptions.Provider)} must be one of {string.Join(", ", Enum.GetNames<DatabaseProvider>())}.");
        }

        if (options.Provider == DatabaseProvider.Postgres && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add($"ConnectionStrings:{DatabaseOptions.ConnectionStringName} (or {DatabaseOptions.PostgresEnvironmentVariable}) is required for the Postgres provider; "
                + "run `deploy/local/services start` for a local PostgreSQL, or set Database:Provider=Sqlite.");
        }

        if (options.Provider == DatabaseProvider.Sqlite && string.IsNullOrWhiteSpace(options.SqlitePath))
        {
            failures.Add($"{DatabaseOptions.SectionName}:{nameof(DatabaseOptions.SqlitePath)} must name a file for the Sqlite provider.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
