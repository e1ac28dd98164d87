using RenderFarm.Coordinator.Options;

namespace RenderFarm.Coordinator.Dispatch;

/// <summary>A work unit's outbox row as the dispatch order sees it.</summary>
/// <param name="RowId">The outbox row; within a job, rows go in this order (submission order, then re-queues).</param>
/// <param name="JobId">The job the unit belongs to.</param>
/// <param name="Priority">The job's priority: higher goes first.</param>
/// <param name="JobCreatedAt">When the job was submitted: the older job wins a tie.</param>
/// <param name="ItemCount">Items the row names (some may have been canceled since).</param>
/// <param name="Tenant">The tenant whose key submitted the job (the default tenant on an open farm).</param>
internal sealed record DispatchCandidate(long RowId, Guid JobId, int Priority, DateTime JobCreatedAt, int ItemCount, string Tenant = Auth.FarmClaims.DefaultTenant);

/// <summary>
/// The unit of fairness: what jobs of one priority share the farm by (<see cref="OutboxDispatcherOptions.FairShareBy"/>):
/// each job, or each tenant, whose jobs then take turns within its share.
/// </summary>
internal interface IFairShareKey
{
    /// <summary>The share <paramref name="candidate"/>'s unit is counted against.</summary>
    string KeyOf(DispatchCandidate candidate);
}

/// <summary>A tenant's jobs are one share: tenants take turns, and a tenant's own jobs take turns within its share.</summary>
internal sealed class TenantFairShareKey : IFairShareKey
{
    public string KeyOf(DispatchCandidate candidate)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        return candidate.Tenant;
    }
}

/// <summary>Every job is its own share.</summary>
internal sealed class JobFairShareKey : IFairShareKey
{
    public string KeyOf(DispatchCandidate candidate)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        return candidate.JobId.ToString("N");
    }
}

/// <summary>
/// The order in which the dispatcher offers outbox rows to the window: a pure function of the candidates and what
/// each job has in flight, so it is unit-tested without a database or a bus.
/// </summary>
/// <remarks>
/// <para>Priority first, strictly: no unit of a lower priority goes before a unit of a higher one that is due.</para>
/// <para>Within a priority, <see cref="FairSharePolicy.LeastInFlight"/> hands each next unit to the share with the
/// fewest items dispatched and not yet finished (counting the units already chosen in this round), the older job on a
/// tie. Because the count comes from the database each round rather than from a turn pointer kept here, turns survive
/// restarts and several coordinators, and a share whose units finish quickly gets the next slot sooner: each share
/// holds about the same number of the farm's slots. <see cref="FairSharePolicy.Submission"/> is first in, first out
/// by job. Either way a job's own units keep their row order.</para>
/// </remarks>
internal sealed class DispatchOrder(FairSharePolicy policy, IFairShareKey key)
{
    public FairSharePolicy Policy { get; } = Enum.IsDefined(policy) ? policy : throw new ArgumentOutOfRangeException(nameof(policy));

    /// <summary>The candidates in the order they should be sent.</summary>
    /// <param name="candidates">Due work-unit rows, any order.</param>
    /// <param name="inFlight">Items dispatched and not finished (sent and not started, or running), by job; missing = 0.</param>
    public List<DispatchCandidate> Order(IReadOnlyCollection<DispatchCandidate> candidates, IReadOnlyDictionary<Guid, long> inFlight)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(inFlight);
        var ordered = new List<DispatchCandidate>(candidates.Count);
        foreach (var level in candidates.GroupBy(c => c.Priority).OrderByDescending(g => g.Key))
        {
            var rows = level.OrderBy(c => c.JobCreatedAt).ThenBy(c => c.JobId).ThenBy(c => c.RowId);
            if (Policy == FairSharePolicy.Submission)
            {
                ordered.AddRange(rows);
                continue;
            }

            ordered.AddRange(TakeTurns(rows.ToList(), inFlight));
        }

        return ordered;
    }

    private IEnumerable<DispatchCandidate> TakeTurns(List<DispatchCandidate> rows, IReadOnlyDictionary<Guid, long> inFlight)
    {
        if (key is JobFairShareKey)
        {
            return TakeTurns(rows, inFlight, key);
        }

        // Shares wider than a job (a tenant's jobs): each share's own rows take turns by job first, then the shares
        // take turns with each other, so neither a tenant with many jobs nor a tenant's one huge job crowds out others.
        var within = rows.GroupBy(key.KeyOf, StringComparer.Ordinal)
            .SelectMany(share => TakeTurns([.. share], inFlight, Jobs))
            .ToList();
        return TakeTurns(within, inFlight, key);
    }

    private static readonly JobFairShareKey Jobs = new();

    // Rows must come in each share's dispatch order; the first row of each share is its head.
    private static IEnumerable<DispatchCandidate> TakeTurns(List<DispatchCandidate> rows, IReadOnlyDictionary<Guid, long> inFlight, IFairShareKey key)
    {
        // Each share's rows in order (the list is sorted by job age, then row), and its load to start from.
        var shares = new Dictionary<string, Queue<DispatchCandidate>>(StringComparer.Ordinal);
        var load = new Dictionary<string, long>(StringComparer.Ordinal);
        var counted = new HashSet<Guid>();
        foreach (var row in rows)
        {
            var share = key.KeyOf(row);
            if (!shares.TryGetValue(share, out var queue))
            {
                shares[share] = queue = new Queue<DispatchCandidate>();
                load[share] = 0;
            }

            queue.Enqueue(row);
            if (counted.Add(row.JobId))
            {
                load[share] += inFlight.GetValueOrDefault(row.JobId);
            }
        }

        var next = new PriorityQueue<string, (long Load, DateTime Created, long Row)>();
        foreach (var (share, queue) in shares)
        {
            var head = queue.Peek();
            next.Enqueue(share, (load[share], head.JobCreatedAt, head.RowId));
        }

        while (next.TryDequeue(out var share, out var rank))
        {
            var queue = shares[share];
            var row = queue.Dequeue();
            yield return row;
            if (queue.Count > 0)
            {
                var head = queue.Peek();
                next.Enqueue(share, (rank.Load + row.ItemCount, head.JobCreatedAt, head.RowId));
            }
        }
    }
}
