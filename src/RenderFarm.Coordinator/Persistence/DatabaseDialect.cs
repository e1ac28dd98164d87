using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Persistence;

/// <summary>
/// The few statements that differ by provider: bulk writes and row claims. Everything else is LINQ that both
/// providers translate.
/// </summary>
internal interface IDatabaseDialect
{
    /// <summary>Writes a page of new items inside the caller's transaction.</summary>
    Task WriteItemsAsync(CoordinatorDbContext db, IReadOnlyList<ItemRow> items, CancellationToken cancellationToken);

    /// <summary>Writes new outbox rows inside the caller's transaction.</summary>
    Task WriteOutboxAsync(CoordinatorDbContext db, IReadOnlyList<OutboxRow> rows, CancellationToken cancellationToken);

    /// <summary>
    /// Removes up to <paramref name="limit"/> due outbox rows and returns them, inside the caller's transaction:
    /// a rollback puts them back, and concurrent dispatchers never claim the same row.
    /// </summary>
    Task<List<OutboxRow>> ClaimOutboxAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken);

    /// <summary>Locks (for the caller's transaction) up to <paramref name="limit"/> running items whose lease clock is before <paramref name="heartbeatBefore"/>.</summary>
    Task<List<ItemRow>> LockLapsedLeasesAsync(CoordinatorDbContext db, DateTime heartbeatBefore, int limit, CancellationToken cancellationToken);

    /// <summary>Locks up to <paramref name="limit"/> retrying items whose backoff has passed at <paramref name="now"/>.</summary>
    Task<List<ItemRow>> LockDueRetriesAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken);
}

/// <summary>PostgreSQL: binary COPY for bulk writes and <c>FOR UPDATE SKIP LOCKED</c> so several coordinators can share the work.</summary>
internal sealed class PostgresDialect : IDatabaseDialect
{
    private const string CopyItems =
        """COPY items (id, job_id, "index", seed, prompt, negative_prompt, width, height, steps, guidance_scale, sampler, model, mode, strength, init_image_key, mask_key, state, attempt, steps_done) FROM STDIN (FORMAT BINARY)""";

    private const string CopyOutbox =
        "COPY outbox (kind, job_id, first_index, item_count, payload, created_at, available_at) FROM STDIN (FORMAT BINARY)";

    private const string ClaimSql =
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE available_at <= {0} ORDER BY id LIMIT {1} FOR UPDATE SKIP LOCKED) RETURNING *";

    private const string LapsedSql =
        "SELECT * FROM items WHERE state = {0} AND heartbeat_at < {1} ORDER BY heartbeat_at LIMIT {2} FOR UPDATE SKIP LOCKED";

    private const string DueSql =
        "SELECT * FROM items WHERE state = {0} AND retry_at <= {1} ORDER BY retry_at LIMIT {2} FOR UPDATE SKIP LOCKED";

    public async Task WriteItemsAsync(CoordinatorDbContext db, IReadOnlyList<ItemRow> items, CancellationToken cancellationToken)
    {
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        await using var writer = await connection.BeginBinaryImportAsync(CopyItems, cancellationToken);
        foreach (var item in items)
        {
            await writer.StartRowAsync(cancellationToken);
            await writer.WriteAsync(item.Id, NpgsqlDbType.Uuid, cancellationToken);
            await writer.WriteAsync(item.JobId, NpgsqlDbType.Uuid, cancellationToken);
            await writer.WriteAsync(item.Index, NpgsqlDbType.Bigint, cancellationToken);
            await writer.WriteAsync(item.Seed, NpgsqlDbType.Bigint, cancellationToken);
            await writer.WriteAsync(item.Prompt, NpgsqlDbType.Text, cancellationToken);
            await writer.WriteAsync(item.NegativePrompt, NpgsqlDbType.Text, cancellationToken);
            await writer.WriteAsync(item.Width, NpgsqlDbType.Integer, cancellationToken);
            await writer.WriteAsync(item.Height, NpgsqlDbType.Integer, cancellationToken);
            await writer.WriteAsync(item.Steps, NpgsqlDbType.Integer, cancellationToken);
            await writer.WriteAsync(item.GuidanceScale, NpgsqlDbType.Double, cancellationToken);
            await writer.WriteAsync(item.Sampler, NpgsqlDbType.Text, cancellationToken);
            await writer.WriteAsync(item.Model, NpgsqlDbType.Text, cancellationToken);
            await writer.WriteAsync(item.Mode, NpgsqlDbType.Text, cancellationToken);
            await WriteNullableAsync(writer, item.Strength, NpgsqlDbType.Double, cancellationToken);
            await WriteNullableAsync(writer, item.InitImageKey, NpgsqlDbType.Text, cancellationToken);
            await WriteNullableAsync(writer, item.MaskKey, NpgsqlDbType.Text, cancellationToken);
            await writer.WriteAsync((int)item.State, NpgsqlDbType.Integer, cancellationToken);
            await writer.WriteAsync(item.Attempt, NpgsqlDbType.Integer, cancellationToken);
            await writer.WriteAsync(item.StepsDone, NpgsqlDbType.Integer, cancellationToken);
        }

        await writer.CompleteAsync(cancellationToken);
    }

    public async Task WriteOutboxAsync(CoordinatorDbContext db, IReadOnlyList<OutboxRow> rows, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
        {
            return;
        }

        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        await using var writer = await connection.BeginBinaryImportAsync(CopyOutbox, cancellationToken);
        foreach (var row in rows)
        {
            await writer.StartRowAsync(cancellationToken);
            await writer.WriteAsync((int)row.Kind, NpgsqlDbType.Integer, cancellationToken);
            await writer.WriteAsync(row.JobId, NpgsqlDbType.Uuid, cancellationToken);
            await writer.WriteAsync(row.FirstIndex, NpgsqlDbType.Bigint, cancellationToken);
            await writer.WriteAsync(row.ItemCount, NpgsqlDbType.Integer, cancellationToken);
            await WriteNullableAsync(writer, row.Payload, NpgsqlDbType.Text, cancellationToken);
            await writer.WriteAsync(row.CreatedAt, NpgsqlDbType.TimestampTz, cancellationToken);
            await writer.WriteAsync(row.AvailableAt, NpgsqlDbType.TimestampTz, cancellationToken);
        }

        await writer.CompleteAsync(cancellationToken);
    }

    public Task<List<OutboxRow>> ClaimOutboxAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken) =>
        db.Outbox.FromSqlRaw(ClaimSql, now, limit).AsNoTracking().ToListAsync(cancellationToken);

    public Task<List<ItemRow>> LockLapsedLeasesAsync(CoordinatorDbContext db, DateTime heartbeatBefore, int limit, CancellationToken cancellationToken) =>
        db.Items.FromSqlRaw(LapsedSql, (int)ItemState.Running, heartbeatBefore, limit).AsNoTracking().ToListAsync(cancellationToken);

    public Task<List<ItemRow>> LockDueRetriesAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken) =>
        db.Items.FromSqlRaw(DueSql, (int)ItemState.Retrying, now, limit).AsNoTracking().ToListAsync(cancellationToken);

    private static async Task WriteNullableAsync<T>(NpgsqlBinaryImporter writer, T? value, NpgsqlDbType type, CancellationToken cancellationToken)
    {
        if (value is null)
        {
            await writer.WriteNullAsync(cancellationToken);
        }
        else
        {
            await writer.WriteAsync(value, type, cancellationToken);
        }
    }

    private static async Task WriteNullableAsync<T>(NpgsqlBinaryImporter writer, T? value, NpgsqlDbType type, CancellationToken cancellationToken)
        where T : struct
    {
        if (value is { } v)
        {
            await writer.WriteAsync(v, type, cancellationToken);
        }
        else
        {
            await writer.WriteNullAsync(cancellationToken);
        }
    }
}

/// <summary>
/// SQLite: EF's batched multi-row inserts, and plain selects, because an embedded farm has one coordinator and
/// SQLite transactions (begun IMMEDIATE) already serialise every writer.
/// </summary>
internal sealed class SqliteDialect : IDatabaseDialect
{
    public async Task WriteItemsAsync(CoordinatorDbContext db, IReadOnlyList<ItemRow> items, CancellationToken cancellationToken)
    {
        db.Items.AddRange(items);
        await db.SaveChangesAsync(cancellationToken);
        db.ChangeTracker.Clear();
    }

    public async Task WriteOutboxAsync(CoordinatorDbContext db, IReadOnlyList<OutboxRow> rows, CancellationToken cancellationToken)
    {
        db.Outbox.AddRange(rows);
        await db.SaveChangesAsync(cancellationToken);
        db.ChangeTracker.Clear();
    }

    public async Task<List<OutboxRow>> ClaimOutboxAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken)
    {
        var rows = await db.Outbox.Where(o => o.AvailableAt <= now).OrderBy(o => o.Id).Take(limit)
            .AsNoTracking().ToListAsync(cancellationToken);
        if (rows.Count > 0)
        {
            var ids = rows.Select(r => r.Id).ToList();
            await db.Outbox.Where(o => ids.Contains(o.Id)).ExecuteDeleteAsync(cancellationToken);
        }

        return rows;
    }

    public Task<List<ItemRow>> LockLapsedLeasesAsync(CoordinatorDbContext db, DateTime heartbeatBefore, int limit, CancellationToken cancellationToken) =>
        db.Items.Where(i => i.State == ItemState.Running && i.HeartbeatAt < heartbeatBefore)
            .OrderBy(i => i.HeartbeatAt).Take(limit).AsNoTracking().ToListAsync(cancellationToken);

    public Task<List<ItemRow>> LockDueRetriesAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken) =>
        db.Items.Where(i => i.State == ItemState.Retrying && i.RetryAt <= now)
            .OrderBy(i => i.RetryAt).Take(limit).AsNoTracking().ToListAsync(cancellationToken);
}
