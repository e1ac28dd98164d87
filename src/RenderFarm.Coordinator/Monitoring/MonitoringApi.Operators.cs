using System.Globalization;
using Microsoft.EntityFrameworkCore;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Placement;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Monitoring;

// The operators' reads (the dashboard's Fleet, Queues and Jobs pages, and "why waiting"): each is a few bounded
// queries, so the dashboard can poll them every couple of seconds whatever the size of the jobs.
internal sealed partial class MonitoringApi
{
    /// <summary>Largest page of <see cref="GetJobItemsAsync"/>.</summary>
    public const int MaxItemsLimit = 500;

    /// <summary>Longest throughput window, in minutes.</summary>
    public const int MaxStatsMinutes = 120;

    // Completions over this recent window give the rate behind the waiting estimates.
    private static readonly TimeSpan RateWindow = TimeSpan.FromMinutes(5);

    public async Task<JobItemsPage?> GetJobItemsAsync(Guid jobId, ItemState? state, long after, int limit, CancellationToken cancellationToken)
    {
        if (!await db.Jobs.AsNoTracking().AnyAsync(j => j.Id == jobId, cancellationToken))
        {
            return null;
        }

        limit = Math.Clamp(limit, 1, MaxItemsLimit);
        var query = db.Items.AsNoTracking().Where(i => i.JobId == jobId && i.Index > after);
        if (state is { } s)
        {
            query = query.Where(i => i.State == s);
        }

        // One more than the page tells whether there is a next page without counting a million rows.
        var rows = await query.OrderBy(i => i.Index).Take(limit + 1)
            .Select(i => new { i.Index, i.Id, i.Seed, i.State, i.Attempt, i.WorkerId, i.StepsDone, Total = i.StepsTotal ?? i.Steps, i.StartedAt, i.FinishedAt, i.Error, Stored = i.ArtifactKey != null })
            .ToListAsync(cancellationToken);
        var items = rows.Take(limit).Select(i => new JobItem(
            i.Index, i.Id, i.Seed, i.State, i.Attempt, i.WorkerId, i.StepsDone, i.Total, Utc(i.StartedAt), Utc(i.FinishedAt), i.Error,
            i.State == ItemState.Succeeded && i.Stored ? CoordinatorRoutes.ImageUrl(jobId, i.Index) : null)).ToList();
        return new JobItemsPage(items, rows.Count > limit ? items[^1].Index : null);
    }

    public async Task<IReadOnlyList<FleetWorker>> GetFleetAsync(CancellationToken cancellationToken)
    {
        var workers = await GetWorkersAsync(cancellationToken);
        var ids = workers.Where(w => w.Live).SelectMany(w => w.CurrentItems).Distinct().ToList();
        var now = clock.GetUtcNow();
        // A heartbeat is up to one interval old: items it lists that have finished since are left out.
        var current = ids.Count == 0 ? [] : await db.Items.AsNoTracking()
            .Where(i => ids.Contains(i.Id) && i.State == ItemState.Running)
            .Select(i => new { i.Id, i.JobId, i.Index, i.StepsDone, Total = i.StepsTotal ?? i.Steps, i.StartedAt })
            .ToListAsync(cancellationToken);
        var byId = current.ToDictionary(i => i.Id);
        return [.. workers.Select(w => new FleetWorker(
            w,
            !w.Live ? "gone" : w.State == WorkerState.Draining ? "draining" : "live",
            w.Live
                ? [.. w.CurrentItems.Where(byId.ContainsKey).Select(id => byId[id]).Select(i => new WorkerCurrentItem(
                    i.JobId, i.Index, i.Id, i.StepsDone, i.Total, Utc(i.StartedAt), StepsPerSecond(i.StepsDone, i.StartedAt, now)))]
                : []))];
    }

    public async Task<QueueStats> GetQueueStatsAsync(int minutes, CancellationToken cancellationToken)
    {
        minutes = Math.Clamp(minutes, 1, MaxStatsMinutes);
        var now = clock.GetUtcNow().UtcDateTime;
        var (jobCounts, itemCounts) = await StateCounts.ReadAsync(db, cancellationToken);

        var outbox = await db.Outbox.AsNoTracking().GroupBy(o => o.Kind).Select(g => new { Kind = g.Key, Count = g.LongCount() }).ToListAsync(cancellationToken);
        var oldestDue = await db.Outbox.AsNoTracking().Where(o => o.AvailableAt <= now).OrderBy(o => o.AvailableAt)
            .Select(o => o.AvailableAt).Take(1).ToListAsync(cancellationToken);
        var outboxStats = new OutboxStats(
            outbox.Where(o => o.Kind == OutboxKind.WorkUnit).Sum(o => o.Count),
            outbox.Where(o => o.Kind != OutboxKind.WorkUnit).Sum(o => o.Count),
            oldestDue.Count == 0 ? 0 : Math.Max(0, (now - oldestDue[0]).TotalSeconds));

        var first = new DateTime(now.Ticks - (now.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc).AddMinutes(1 - minutes);
        var finished = await db.Items.AsNoTracking()
            .Where(i => i.FinishedAt >= first && (i.State == ItemState.Succeeded || i.State == ItemState.Failed))
            .Select(i => new { i.FinishedAt, i.State })
            .ToListAsync(cancellationToken);
        var started = await db.Items.AsNoTracking()
            .Where(i => i.StartedAt >= first)
            .Join(db.Jobs.AsNoTracking(), i => i.JobId, j => j.Id, (i, j) => new { i.StartedAt, j.CreatedAt })
            .ToListAsync(cancellationToken);
        var buckets = new List<ThroughputBucket>(minutes);
        for (var m = 0; m < minutes; m++)
        {
            var from = first.AddMinutes(m);
            var to = from.AddMinutes(1);
            var starts = started.Where(s => s.StartedAt >= from && s.StartedAt < to).ToList();
            buckets.Add(new ThroughputBucket(
                Utc(from),
                finished.LongCount(f => f.State == ItemState.Succeeded && f.FinishedAt >= from && f.FinishedAt < to),
                finished.LongCount(f => f.State == ItemState.Failed && f.FinishedAt >= from && f.FinishedAt < to),
                starts.Count,
                starts.Count == 0 ? null : starts.Average(s => Math.Max(0, (s.StartedAt!.Value - s.CreatedAt).TotalSeconds))));
        }

        return new QueueStats(Utc(now), itemCounts, jobCounts, outboxStats, buckets);
    }

    public async Task<WaitingJob?> GetWaitingAsync(Guid jobId, CancellationToken cancellationToken)
    {
        var job = await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId, cancellationToken);
        if (job is null)
        {
            return null;
        }

        var context = await ReadWaitContextAsync(cancellationToken);
        if (!Waits(job))
        {
            return Explain(job, 0, 0, context);
        }

        var priority = job.Priority;
        var before = job.CreatedAt;
        var ahead = await WaitingJobs().Where(j => j.Priority > priority || (j.Priority == priority && j.CreatedAt < before))
            .GroupBy(j => 1).Select(g => new { Jobs = g.Count(), Items = g.Sum(j => j.QueuedItems + j.RetryingItems) })
            .FirstOrDefaultAsync(cancellationToken);
        return Explain(job, (ahead?.Jobs ?? 0) + 1, ahead?.Items ?? 0, context);
    }

    public async Task<PagedResult<WaitingJob>> GetQueueAsync(int page, int pageSize, CancellationToken cancellationToken)
    {
        var waiting = WaitingJobs();
        var total = await waiting.LongCountAsync(cancellationToken);
        var rows = await waiting.OrderByDescending(j => j.Priority).ThenBy(j => j.CreatedAt).Skip((page - 1) * pageSize).Take(pageSize).ToListAsync(cancellationToken);
        if (rows.Count == 0)
        {
            return new PagedResult<WaitingJob>([], page, pageSize, total);
        }

        var firstPriority = rows[0].Priority;
        var firstCreated = rows[0].CreatedAt;
        var ahead = await waiting.Where(j => j.Priority > firstPriority || (j.Priority == firstPriority && j.CreatedAt < firstCreated)).SumAsync(j => j.QueuedItems + j.RetryingItems, cancellationToken);
        var context = await ReadWaitContextAsync(cancellationToken);
        var result = new List<WaitingJob>(rows.Count);
        for (var k = 0; k < rows.Count; k++)
        {
            result.Add(Explain(rows[k], ((page - 1) * pageSize) + k + 1, ahead, context));
            ahead += rows[k].QueuedItems + rows[k].RetryingItems;
        }

        return new PagedResult<WaitingJob>(result, page, pageSize, total);
    }

    // The queue is unfinished jobs with items not yet started, in dispatch order: higher priority first, then oldest
    // first. Exact with FairShare=Submission; with LeastInFlight jobs of one priority take turns, so the equal-priority
    // jobs before a job are not wholly ahead of it and its position is an upper bound.
    private IQueryable<JobRow> WaitingJobs() => db.Jobs.AsNoTracking()
        .Where(j => (j.State == JobState.Queued || j.State == JobState.Running) && j.QueuedItems + j.RetryingItems > 0);

    private static bool Waits(JobRow job) => !JobStateMachine.IsFinal(job.State) && job.QueuedItems + job.RetryingItems > 0;

    private WaitingJob Explain(JobRow job, int position, long itemsAhead, WaitContext context)
    {
        var c = CultureInfo.InvariantCulture;
        var queued = job.QueuedItems + job.RetryingItems;
        var (width, height) = LargestItemSize(job);
        var unit = new UnitShape(job.Model, width, height);
        var verdicts = context.Workers.Select(w =>
        {
            var (canTake, reasons, explanation) = WaitVerdicts.Judge(unit, w.Capacity, w.Row.State, w.Row.LastHeartbeatAt >= context.LiveAfter);
            return new WorkerVerdict(w.Row.Id, canTake, reasons, explanation);
        }).ToList();
        double? estimate = context.ItemsPerSecond is { } rate && rate > 0 && position > 0 ? itemsAhead / rate : null;

        string summary;
        if (position == 0)
        {
            summary = JobStateMachine.IsFinal(job.State) ? $"Not waiting: the job is {job.State}." : "Not waiting: every item has started.";
        }
        else
        {
            var place = string.Create(c, $"#{position} in the queue, {itemsAhead} item(s) ahead");
            var eta = itemsAhead == 0
                ? ", next in line"
                : estimate is { } e ? string.Create(c, $", start in about {Math.Ceiling(e)} s at {context.ItemsPerSecond:0.##} items/s") : "";
            var takers = verdicts.Count(v => v.CanTake);
            var why = verdicts.Count == 0
                ? "no worker has connected recently."
                : takers > 0
                    ? $"{takers} worker(s) can take it now."
                    : string.Join("; ", verdicts.SelectMany(v => v.Reasons).Where(r => r != WaitReasons.ModelMissing).GroupBy(r => r)
                        .Select(g => string.Create(c, $"{g.Count()} {g.Key}"))) is { Length: > 0 } tally
                        ? $"no worker can take it now ({tally})."
                        : "no worker can take it now.";
            summary = $"{place}{eta}; {why}";
        }

        return new WaitingJob(job.Id, job.State, position, queued, itemsAhead, context.ItemsPerSecond, estimate, summary, verdicts);
    }

    private sealed record WaitContext(List<(WorkerRow Row, WorkerCapacity Capacity)> Workers, DateTime LiveAfter, double? ItemsPerSecond);

    private async Task<WaitContext> ReadWaitContextAsync(CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var liveAfter = LiveAfter();
        var seenAfter = now - (Fleet.AbsentLeases * _lease.LeaseDuration);
        var workers = await Fleet.ReadRecentAsync(db, seenAfter, cancellationToken);

        // Rate over the recent window, measured from its first completion so a farm that just started is not
        // taken for a slow one.
        var since = now - RateWindow;
        var done = await db.Items.AsNoTracking()
            .Where(i => i.FinishedAt >= since && i.State == ItemState.Succeeded)
            .GroupBy(i => 1).Select(g => new { Count = g.LongCount(), First = g.Min(i => i.FinishedAt) })
            .FirstOrDefaultAsync(cancellationToken);
        double? rate = done is { Count: > 0, First: { } firstDone }
            ? done.Count / Math.Max(10, (now - firstDone).TotalSeconds)
            : null;
        return new WaitContext(workers, liveAfter, rate);
    }

    private static double? StepsPerSecond(int steps, DateTime? startedAt, DateTimeOffset now) =>
        steps > 0 && startedAt is { } at && (now.UtcDateTime - at).TotalSeconds is var seconds && seconds > 0 ? steps / seconds : null;
}
