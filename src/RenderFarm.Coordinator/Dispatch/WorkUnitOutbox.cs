using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.Items;

namespace RenderFarm.Coordinator.Dispatch;

/// <summary>Outbox rows that queue existing items again (the rescuer's retries, an operator's retry of failed items).</summary>
internal static class WorkUnitOutbox
{
    /// <summary>One outbox row per unit the planner would make of each job's consecutive items.</summary>
    public static List<OutboxRow> RowsFor(IEnumerable<ItemRow> items, WorkUnitPlanner planner, DateTime now)
    {
        ArgumentNullException.ThrowIfNull(planner);
        var outbox = new List<OutboxRow>();
        foreach (var job in items.GroupBy(i => i.JobId).OrderBy(g => g.Key))
        {
            foreach (var run in ContiguousRuns(job.OrderBy(i => i.Index)))
            {
                foreach (var unit in planner.Plan(run, ItemMessages.BatchKeyOf))
                {
                    outbox.Add(new OutboxRow
                    {
                        Kind = OutboxKind.WorkUnit,
                        JobId = job.Key,
                        FirstIndex = unit[0].Index,
                        ItemCount = unit.Count,
                        CreatedAt = now,
                        AvailableAt = now,
                    });
                }
            }
        }

        return outbox;
    }

    // A unit's outbox row is an index range, so only items with consecutive indexes may share one.
    private static IEnumerable<List<ItemRow>> ContiguousRuns(IEnumerable<ItemRow> ordered)
    {
        var run = new List<ItemRow>();
        foreach (var item in ordered)
        {
            if (run.Count > 0 && item.Index != run[^1].Index + 1)
            {
                yield return run;
                run = [];
            }

            run.Add(item);
        }

        if (run.Count > 0)
        {
            yield return run;
        }
    }
}
