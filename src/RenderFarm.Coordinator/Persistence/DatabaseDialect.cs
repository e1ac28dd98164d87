using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using Npgsql;
using Npgsql.EntityFrameworkCore.PostgreSQL;
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
    /// Removes up to <paramref name="limit"/> due outbox rows that are events (not work units) and returns them, inside
    /// the caller's transaction: a rollback puts them back, and concurrent dispatchers never claim the same row.
    /// </summary>
    Task<List<OutboxRow>> ClaimEventsAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Removes those of the outbox rows <paramref name="ids"/> that no other transaction holds or has removed, inside the
    /// caller's transaction, and returns their ids: only the returned rows are the caller's to send.
    /// </summary>
    Task<List<long>> ClaimOutboxRowsAsync(CoordinatorDbContext db, IReadOnlyList<long> ids, CancellationToken cancellationToken);

    /// <summary>
    /// Takes, for the caller's transaction, the right to fill the dispatch window; false when another coordinator's
    /// dispatcher holds it. Two dispatchers counting the same window at once would each fill it.
    /// </summary>
    Task<bool> TryLockDispatchAsync(CoordinatorDbContext db, CancellationToken cancellationToken);

    /// <summary>
    /// The first <paramref name="perJob"/> due work-unit rows (by id) of each queued or running job, with the job's
    /// priority and submission time: what the dispatch order chooses from. Reads only; nothing is claimed.
    /// </summary>
    Task<List<OutboxCandidate>> ReadDueUnitsAsync(CoordinatorDbContext db, DateTime now, int perJob, CancellationToken cancellationToken);

    /// <summary>Locks (for the caller's transaction) up to <paramref name="limit"/> running items whose lease clock is before <paramref name="heartbeatBefore"/>.</summary>
    Task<List<ItemRow>> LockLapsedLeasesAsync(CoordinatorDbContext db, DateTime heartbeatBefore, int limit, CancellationToken cancellationToken);

    /// <summary>Locks up to <paramref name="limit"/> retrying items whose backoff has passed at <paramref name="now"/>.</summary>
    Task<List<ItemRow>> LockDueRetriesAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Locks every unfinished item of a job for the caller's transaction, in item id order: the order in which the
    /// ledger's batches and the progress flusher lock items, so a cancel waits for them instead of deadlocking.
    /// </summary>
    Task LockUnfinishedItemsAsync(CoordinatorDbContext db, Guid jobId, CancellationToken cancellationToken);

    /// <summary>
    /// How to run a transaction that may still lose a deadlock (a hires job's failure cascade locks the parts it fails
    /// after its own item, in index order): retried from the start when the database chose it as the victim.
    /// </summary>
    IExecutionStrategy RetryOnConflict(CoordinatorDbContext db);
}

/// <summary>A due work-unit row and what the dispatch order needs of its job.</summary>
internal sealed record OutboxCandidate(OutboxRow Row, int Priority, DateTime JobCreatedAt, string Tenant);

/// <summary>PostgreSQL: binary COPY for bulk writes and <c>FOR UPDATE SKIP LOCKED</c> so several coordinators can share the work.</summary>
internal sealed class PostgresDialect : IDatabaseDialect
{
    private const string CopyItems =
        """COPY items (id, job_id, "index", seed, prompt, negative_prompt, width, height, steps, guidance_scale, sampler, model, mode, strength, init_image_key, mask_key, state, attempt, steps_done) FROM STDIN (FORMAT BINARY)""";

    private const string CopyOutbox =
        "COPY outbox (kind, job_id, first_index, item_count, payload, created_at, available_at) FROM STDIN (FORMAT BINARY)";

    // Any fixed 64-bit key; only the dispatchers of one database take it.
    private const long DispatchLockKey = 0x52464469737061;

    private const string TryLockDispatchSql = """SELECT pg_try_advisory_xact_lock({0}) AS "Value" """;

    private const string ClaimEventsSql =
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind <> {0} AND available_at <= {1} ORDER BY id LIMIT {2} FOR UPDATE SKIP LOCKED) RETURNING *";

    private const string ClaimRowsSql =
        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE id = ANY({0}) FOR UPDATE SKIP LOCKED) RETURNING id AS \"Value\"";

    private const string LapsedSql =
        "SELECT * FROM items WHERE state = {0} AND heartbeat_at < {1} ORDER BY heartbeat_at LIMIT {2} FOR UPDATE SKIP LOCKED";

    private const string DueSql =
        "SELECT * FROM items WHERE state = {0} AND retry_at <= {1} ORDER BY retry_at LIMIT {2} FOR UPDATE SKIP LOCKED";

    // PostgreSQL sorts before it locks, so the rows are locked in id order; the count keeps the rows on the server.
    private const string LockUnfinishedSql =
        """SELECT count(*) AS "Value" FROM (SELECT id FROM items WHERE job_id = {0} AND state IN ({1}, {2}, {3}) ORDER BY id FOR UPDATE) AS locked""";

    // A deadlock victim is retried at once and then with backoff; three tries outlast any cycle the ledger can form.
    private const int ConflictRetries = 3;

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

    public Task<List<OutboxRow>> ClaimEventsAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken) =>
        db.Outbox.FromSqlRaw(ClaimEventsSql, (int)OutboxKind.WorkUnit, now, limit).AsNoTracking().ToListAsync(cancellationToken);

    public async Task<List<long>> ClaimOutboxRowsAsync(CoordinatorDbContext db, IReadOnlyList<long> ids, CancellationToken cancellationToken) =>
        ids.Count == 0 ? [] : await db.Database.SqlQueryRaw<long>(ClaimRowsSql, ids.ToArray()).ToListAsync(cancellationToken);

    // A transaction-scoped advisory lock: released by the commit or rollback, never left behind by a crash.
    public async Task<bool> TryLockDispatchAsync(CoordinatorDbContext db, CancellationToken cancellationToken) =>
        (await db.Database.SqlQueryRaw<bool>(TryLockDispatchSql, DispatchLockKey).ToListAsync(cancellationToken)).Single();

    // A lateral join: per unfinished job, an index range scan of (job_id, id), never a sort of the whole outbox.
    public Task<List<OutboxCandidate>> ReadDueUnitsAsync(CoordinatorDbContext db, DateTime now, int perJob, CancellationToken cancellationToken) =>
        db.Jobs.AsNoTracking()
            .Where(j => j.State == JobState.Queued || j.State == JobState.Running)
            .SelectMany(j => db.Outbox
                .Where(o => o.JobId == j.Id && o.Kind == OutboxKind.WorkUnit && o.AvailableAt <= now)
                .OrderBy(o => o.Id)
                .Take(perJob)
                .Select(o => new OutboxCandidate(o, j.Priority, j.CreatedAt, j.Tenant)))
            .ToListAsync(cancellationToken);

    public Task<List<ItemRow>> LockLapsedLeasesAsync(CoordinatorDbContext db, DateTime heartbeatBefore, int limit, CancellationToken cancellationToken) =>
        db.Items.FromSqlRaw(LapsedSql, (int)ItemState.Running, heartbeatBefore, limit).AsNoTracking().ToListAsync(cancellationToken);

    public Task<List<ItemRow>> LockDueRetriesAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken) =>
        db.Items.FromSqlRaw(DueSql, (int)ItemState.Retrying, now, limit).AsNoTracking().ToListAsync(cancellationToken);

    public Task LockUnfinishedItemsAsync(CoordinatorDbContext db, Guid jobId, CancellationToken cancellationToken) =>
        db.Database.SqlQueryRaw<long>(LockUnfinishedSql, jobId, (int)ItemState.Queued, (int)ItemState.Running, (int)ItemState.Retrying)
            .ToListAsync(cancellationToken);

    public IExecutionStrategy RetryOnConflict(CoordinatorDbContext db) => new ConflictRetryingStrategy(db, ConflictRetries);

    /// <summary>
    /// Npgsql's retrying strategy (it retries what PostgreSQL reports as transient, deadlock_detected among them), run
    /// around commands that the context's own non-retrying strategy executes: that one reports a transient error as an
    /// <see cref="InvalidOperationException"/> wrapping it, so the wrapped error is looked at too.
    /// </summary>
    private sealed class ConflictRetryingStrategy(DbContext context, int maxRetryCount) : NpgsqlRetryingExecutionStrategy(context, maxRetryCount)
    {
        protected override bool ShouldRetryOn(Exception? exception) =>
            base.ShouldRetryOn(exception) || (exception is InvalidOperationException { InnerException: { } inner } && base.ShouldRetryOn(inner));
    }

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
/// SQLite: one prepared insert re-bound per row for bulk writes, and plain selects, because an embedded farm has one
/// coordinator and SQLite transactions (begun IMMEDIATE) already serialise every writer.
/// </summary>
internal sealed class SqliteDialect : IDatabaseDialect
{
    // The columns a submission sets, as PostgreSQL's COPY writes them; every other column keeps its default.
    private static readonly string[] ItemColumns =
    [
        nameof(ItemRow.Id), nameof(ItemRow.JobId), nameof(ItemRow.Index), nameof(ItemRow.Seed), nameof(ItemRow.Prompt),
        nameof(ItemRow.NegativePrompt), nameof(ItemRow.Width), nameof(ItemRow.Height), nameof(ItemRow.Steps),
        nameof(ItemRow.GuidanceScale), nameof(ItemRow.Sampler), nameof(ItemRow.Model), nameof(ItemRow.Mode),
        nameof(ItemRow.Strength), nameof(ItemRow.InitImageKey), nameof(ItemRow.MaskKey), nameof(ItemRow.State),
        nameof(ItemRow.Attempt), nameof(ItemRow.StepsDone),
    ];

    private static readonly string[] OutboxColumns =
    [
        nameof(OutboxRow.Kind), nameof(OutboxRow.JobId), nameof(OutboxRow.FirstIndex), nameof(OutboxRow.ItemCount),
        nameof(OutboxRow.Payload), nameof(OutboxRow.CreatedAt), nameof(OutboxRow.AvailableAt),
    ];

    public Task WriteItemsAsync(CoordinatorDbContext db, IReadOnlyList<ItemRow> items, CancellationToken cancellationToken) =>
        InsertAsync(db, items, ItemColumns, cancellationToken);

    public Task WriteOutboxAsync(CoordinatorDbContext db, IReadOnlyList<OutboxRow> rows, CancellationToken cancellationToken) =>
        InsertAsync(db, rows, OutboxColumns, cancellationToken);

    /// <summary>
    /// Inserts <paramref name="rows"/> with one prepared statement, re-bound per row, in the caller's transaction, or in
    /// one of its own when the caller has none (all rows or none, as SaveChanges wrote them).
    /// </summary>
    /// <remarks>
    /// EF Core inserts through its change tracker (a tracked entity and a parameter set per row, batched into
    /// multi-row statements): a million-item sweep took 77 to 107 s to submit that way on SQLite, against 21 s with
    /// PostgreSQL's COPY. SQLite's own advice for bulk inserts is this loop, which no served library runs for an EF
    /// model. EF's model still decides how each value is written (column names, type mappings and their converters),
    /// so what this writes is what EF reads back.
    /// </remarks>
    private static async Task InsertAsync<TRow>(CoordinatorDbContext db, IReadOnlyList<TRow> rows, string[] propertyNames, CancellationToken cancellationToken)
        where TRow : class
    {
        if (rows.Count == 0)
        {
            return;
        }

        var entity = db.Model.FindEntityType(typeof(TRow)) ?? throw new InvalidOperationException($"{typeof(TRow).Name} is not in the model.");
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var properties = propertyNames.Select(name => entity.FindProperty(name) ?? throw new InvalidOperationException($"{typeof(TRow).Name}.{name} is not mapped.")).ToArray();

        await db.Database.OpenConnectionAsync(cancellationToken);
        var own = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(cancellationToken) : null;
        try
        {
            await using var command = db.Database.GetDbConnection().CreateCommand();
            command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
            var columns = new List<(Func<TRow, object?> Value, ValueConverter? Converter, System.Data.Common.DbParameter Parameter)>(properties.Length);
            for (var i = 0; i < properties.Length; i++)
            {
                var property = properties[i];
                var mapping = property.GetRelationalTypeMapping();
                // Created by the mapping, so it carries the mapping's store type (e.g. a Guid bound as TEXT, as EF writes it).
                var parameter = mapping.CreateParameter(command, $"@p{i}", null, property.IsNullable);
                command.Parameters.Add(parameter);
                var getter = property.GetGetter();
                columns.Add((row => getter.GetClrValue(row), mapping.Converter, parameter));
            }

            command.CommandText =
                $"INSERT INTO \"{table.Name}\" ({string.Join(", ", properties.Select(p => $"\"{p.GetColumnName(table)}\""))}) "
                + $"VALUES ({string.Join(", ", Enumerable.Range(0, properties.Length).Select(i => $"@p{i}"))})";
            await command.PrepareAsync(cancellationToken);
            foreach (var row in rows)
            {
                foreach (var (value, converter, parameter) in columns)
                {
                    var clr = value(row);
                    parameter.Value = (clr is null ? null : converter is null ? clr : converter.ConvertToProvider(clr)) ?? DBNull.Value;
                }

                await command.ExecuteNonQueryAsync(cancellationToken);
            }

            if (own is not null)
            {
                await own.CommitAsync(cancellationToken);
            }
        }
        finally
        {
            if (own is not null)
            {
                await own.DisposeAsync();
            }

            await db.Database.CloseConnectionAsync();
        }
    }

    public async Task<List<long>> ClaimOutboxRowsAsync(CoordinatorDbContext db, IReadOnlyList<long> ids, CancellationToken cancellationToken)
    {
        if (ids.Count == 0)
        {
            return [];
        }

        // One writer at a time: the rows read are the rows deleted.
        var present = await db.Outbox.Where(o => ids.Contains(o.Id)).Select(o => o.Id).ToListAsync(cancellationToken);
        await db.Outbox.Where(o => present.Contains(o.Id)).ExecuteDeleteAsync(cancellationToken);
        return present;
    }

    public async Task<List<OutboxRow>> ClaimEventsAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken)
    {
        var rows = await db.Outbox.Where(o => o.Kind != OutboxKind.WorkUnit && o.AvailableAt <= now).OrderBy(o => o.Id).Take(limit)
            .AsNoTracking().ToListAsync(cancellationToken);
        if (rows.Count > 0)
        {
            var ids = rows.Select(r => r.Id).ToList();
            await db.Outbox.Where(o => ids.Contains(o.Id)).ExecuteDeleteAsync(cancellationToken);
        }

        return rows;
    }

    private const string FirstDueUnitsSql =
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY job_id ORDER BY id) AS job_row FROM outbox WHERE kind = {0} AND available_at <= {1}) WHERE job_row <= {2}";

    // One coordinator per SQLite file, and its transactions already serialise every writer.
    public Task<bool> TryLockDispatchAsync(CoordinatorDbContext db, CancellationToken cancellationToken) => Task.FromResult(true);

    // SQLite has no lateral join: a row number per job over the due rows (an embedded farm's outbox is small).
    public Task<List<OutboxCandidate>> ReadDueUnitsAsync(CoordinatorDbContext db, DateTime now, int perJob, CancellationToken cancellationToken) =>
        db.Outbox.FromSqlRaw(FirstDueUnitsSql, (int)OutboxKind.WorkUnit, now, perJob).AsNoTracking()
            .Join(db.Jobs.Where(j => j.State == JobState.Queued || j.State == JobState.Running), o => o.JobId, j => j.Id,
                (o, j) => new OutboxCandidate(o, j.Priority, j.CreatedAt, j.Tenant))
            .ToListAsync(cancellationToken);

    public Task<List<ItemRow>> LockLapsedLeasesAsync(CoordinatorDbContext db, DateTime heartbeatBefore, int limit, CancellationToken cancellationToken) =>
        db.Items.Where(i => i.State == ItemState.Running && i.HeartbeatAt < heartbeatBefore)
            .OrderBy(i => i.HeartbeatAt).Take(limit).AsNoTracking().ToListAsync(cancellationToken);

    public Task<List<ItemRow>> LockDueRetriesAsync(CoordinatorDbContext db, DateTime now, int limit, CancellationToken cancellationToken) =>
        db.Items.Where(i => i.State == ItemState.Retrying && i.RetryAt <= now)
            .OrderBy(i => i.RetryAt).Take(limit).AsNoTracking().ToListAsync(cancellationToken);

    // The transaction's database lock is the only lock: there is no row order to keep and no deadlock to lose.
    public Task LockUnfinishedItemsAsync(CoordinatorDbContext db, Guid jobId, CancellationToken cancellationToken) => Task.CompletedTask;

    public IExecutionStrategy RetryOnConflict(CoordinatorDbContext db) => db.Database.CreateExecutionStrategy();
}
