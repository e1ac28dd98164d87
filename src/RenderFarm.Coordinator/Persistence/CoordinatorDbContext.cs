using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Persistence;

/// <summary>
/// The coordinator's tables. One model, two providers: <see cref="PostgresCoordinatorDbContext"/> and
/// <see cref="SqliteCoordinatorDbContext"/> each own a migration set (EF Core's "multiple context types"
/// recipe), so each provider gets DDL written for it while the code only ever sees this type.
/// </summary>
public abstract class CoordinatorDbContext : DbContext
{
    protected CoordinatorDbContext(DbContextOptions options)
        : base(options)
    {
    }

    public DbSet<JobRow> Jobs => Set<JobRow>();

    public DbSet<ItemRow> Items => Set<ItemRow>();

    public DbSet<WorkerRow> Workers => Set<WorkerRow>();

    public DbSet<OutboxRow> Outbox => Set<OutboxRow>();

    public DbSet<IdempotencyKeyRow> IdempotencyKeys => Set<IdempotencyKeyRow>();

    public DbSet<ApiKeyRow> ApiKeys => Set<ApiKeyRow>();

    public DbSet<DatasetShardRow> DatasetShards => Set<DatasetShardRow>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);

        modelBuilder.Entity<JobRow>(job =>
        {
            job.ToTable("jobs");
            job.HasKey(j => j.Id);
            job.HasIndex(j => new { j.State, j.CreatedAt });
            job.HasIndex(j => j.CreatedAt);
            // A submitter's job list: its tenant's jobs, newest first.
            job.HasIndex(j => new { j.Tenant, j.CreatedAt });
            job.Property(j => j.Tenant).HasMaxLength(ApiKeyRow.MaxTenantLength);
            job.Property(j => j.Safety).HasMaxLength(16);
            // 32 UTF-8 bytes at most (the watermark's payload), so as many characters.
            job.Property(j => j.Watermark).HasMaxLength(32);
        });

        modelBuilder.Entity<ItemRow>(item =>
        {
            item.ToTable("items");
            item.HasKey(i => i.Id);
            item.HasIndex(i => new { i.JobId, i.Index }).IsUnique();
            // The rescuer's two scans: lapsed leases of running items, and retries whose backoff has passed.
            item.HasIndex(i => new { i.State, i.HeartbeatAt });
            item.HasIndex(i => new { i.State, i.RetryAt });
            // Placement's safety net: queued attempts sent to one worker that went away before starting them.
            item.HasIndex(i => new { i.State, i.AssignedWorkerId });
            // The dispatcher's window: queued items already sent (a few per worker) among the millions waiting unsent.
            item.HasIndex(i => new { i.State, i.AssignedAt });
            // The manifest's duplicate lookup: the first item of a job with a given image hash (covering, so it reads no rows).
            item.HasIndex(i => new { i.JobId, i.Sha256, i.Index });
            item.Property(i => i.Sha256).HasMaxLength(ItemRow.Sha256Length);
            item.Property(i => i.ModelHash).HasMaxLength(ItemRow.Sha256Length);
            item.Property(i => i.Safety).HasMaxLength(16);
            item.HasOne<JobRow>().WithMany().HasForeignKey(i => i.JobId).OnDelete(DeleteBehavior.Cascade);
        });

        modelBuilder.Entity<WorkerRow>(worker =>
        {
            worker.ToTable("workers");
            worker.HasKey(w => w.Id);
            worker.HasIndex(w => w.LastHeartbeatAt);
        });

        modelBuilder.Entity<OutboxRow>(outbox =>
        {
            outbox.ToTable("outbox");
            outbox.HasKey(o => o.Id);
            outbox.Property(o => o.Id).ValueGeneratedOnAdd();
            outbox.HasIndex(o => o.AvailableAt);
            // The dispatcher reads each unfinished job's first rows, in order.
            outbox.HasIndex(o => new { o.JobId, o.Id });
        });

        modelBuilder.Entity<IdempotencyKeyRow>(key =>
        {
            key.ToTable("idempotency_keys");
            key.HasKey(k => k.Key);
            key.Property(k => k.Key).HasMaxLength(IdempotencyKeyRow.MaxKeyLength);
            key.HasOne<JobRow>().WithMany().HasForeignKey(k => k.JobId).OnDelete(DeleteBehavior.Cascade);
        });

        modelBuilder.Entity<DatasetShardRow>(shard =>
        {
            shard.ToTable("dataset_shards");
            shard.HasKey(s => new { s.JobId, s.Shard });
            shard.Property(s => s.Sha256).HasMaxLength(ItemRow.Sha256Length);
            shard.HasOne<JobRow>().WithMany().HasForeignKey(s => s.JobId).OnDelete(DeleteBehavior.Cascade);
        });

        modelBuilder.Entity<ApiKeyRow>(key =>
        {
            key.ToTable("api_keys");
            key.HasKey(k => k.Id);
            key.Property(k => k.Id).HasMaxLength(ApiKeyRow.IdLength);
            key.Property(k => k.Tenant).HasMaxLength(ApiKeyRow.MaxTenantLength);
            // By name, so a row reads as what it grants and a new role cannot shift the meaning of stored ones.
            key.Property(k => k.Role).HasConversion<string>().HasMaxLength(ApiKeyRow.MaxRoleLength);
        });

        // snake_case columns, so the few hand-written statements (COPY, SKIP LOCKED claims) read like the schema.
        foreach (var entity in modelBuilder.Model.GetEntityTypes())
        {
            foreach (var property in entity.GetProperties())
            {
                property.SetColumnName(SnakeCase(property.Name));
            }
        }
    }

    internal static string SnakeCase(string name)
    {
        var builder = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c) && i > 0)
            {
                builder.Append('_');
            }

            builder.Append(char.ToLowerInvariant(c));
        }

        return builder.ToString();
    }

    /// <summary>Item counters of a job, in the order <see cref="ItemCounts"/> takes them.</summary>
    internal static ItemCounts CountsOf(JobRow job) => new(
        job.QueuedItems, job.RunningItems, job.RetryingItems, job.SucceededItems, job.FailedItems, job.CanceledItems);
}

/// <summary>The model on PostgreSQL; migrations in <c>Persistence/Migrations/Postgres</c>.</summary>
public sealed class PostgresCoordinatorDbContext(DbContextOptions<PostgresCoordinatorDbContext> options)
    : CoordinatorDbContext(options);

/// <summary>The model on SQLite (embedded farm); migrations in <c>Persistence/Migrations/Sqlite</c>.</summary>
public sealed class SqliteCoordinatorDbContext(DbContextOptions<SqliteCoordinatorDbContext> options)
    : CoordinatorDbContext(options)
{
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        ArgumentNullException.ThrowIfNull(configurationBuilder);
        // SQLite keeps no time zone; every time we write is UTC, so say so on the way back.
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcDateTimeConverter>();
    }

    private sealed class UtcDateTimeConverter() : ValueConverter<DateTime, DateTime>(
        v => v.Kind == DateTimeKind.Utc ? v : v.ToUniversalTime(),
        v => DateTime.SpecifyKind(v, DateTimeKind.Utc));
}

// dotnet-ef builds these without a host, so migrations can be added without a running database.
internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresCoordinatorDbContext>
{
    public PostgresCoordinatorDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresCoordinatorDbContext>()
            .UseNpgsql("Host=localhost;Database=renderfarm_design").Options);
}

internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteCoordinatorDbContext>
{
    public SqliteCoordinatorDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteCoordinatorDbContext>()
            .UseSqlite("Data Source=renderfarm-design.db").Options);
}
