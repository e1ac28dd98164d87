using System.Globalization;
using RenderFarm.Contracts;

namespace RenderFarm.Coordinator.Placement;

/// <summary>What placement knows of one live worker (fresh heartbeat, not draining).</summary>
/// <param name="Id">The worker (slot) id of its heartbeats.</param>
/// <param name="MemoryBudgetBytes">Its engine's memory budget, for messages.</param>
/// <param name="MaxPixels">Largest width × height it can plan with some strategy; 0 = unknown (no limit known).</param>
/// <param name="ResidentMaxPixels">Largest width × height it can render fully resident (the cheapest strategy); 0 = unknown.</param>
/// <param name="LoadedModels">Models loaded now.</param>
/// <param name="InstalledModels">Models on its disk.</param>
/// <param name="RenderQueue">Its own queue, or null when it takes only the shared queue.</param>
/// <param name="Running">Items it is rendering (from its last heartbeat).</param>
/// <param name="AssignedQueued">Items placed on its own queue that it has not started yet.</param>
internal sealed record WorkerCapacity(
    string Id,
    long MemoryBudgetBytes,
    long MaxPixels,
    long ResidentMaxPixels,
    IReadOnlyCollection<string> LoadedModels,
    IReadOnlyCollection<string> InstalledModels,
    string? RenderQueue,
    int Running,
    int AssignedQueued)
{
    public int Load => Running + AssignedQueued;

    /// <summary>True when the worker can plan <paramref name="pixels"/> (or does not say what it can plan).</summary>
    public bool Fits(long pixels) => MaxPixels <= 0 || pixels <= MaxPixels;

    /// <summary>2 = model loaded, 1 = on disk, 0 = it would fetch the model from the store first.</summary>
    public int ModelRank(string model) =>
        LoadedModels.Contains(model, StringComparer.Ordinal) ? 2 : InstalledModels.Contains(model, StringComparer.Ordinal) ? 1 : 0;

    /// <summary>True when the cheapest strategy (everything resident) is known to fit.</summary>
    public bool Resident(long pixels) => ResidentMaxPixels > 0 && pixels <= ResidentMaxPixels;
}

/// <summary>The shape of a work unit as placement sees it: every item of a unit shares model and size.</summary>
/// <param name="Model">The model its items name.</param>
/// <param name="Width">Pixels the UNet runs at; 0 for work that runs no UNet (hires stitching).</param>
/// <param name="Height">See <paramref name="Width"/>.</param>
internal readonly record struct UnitShape(string Model, int Width, int Height)
{
    public long Pixels => (long)Width * Height;

    /// <summary>The shape of a unit whose first item is <paramref name="item"/>.</summary>
    public static UnitShape Of(RenderItem item)
    {
        ArgumentNullException.ThrowIfNull(item);

        // A stitch blends stored tiles in row bands and runs no model: any worker can take it, whatever the target size.
        // An upscale job's tile (strength 0) runs its upscaler alone, which the worker plans in tiles of its own under
        // its budget: no UNet size to fit, and the item names the upscaler, so a worker holding it ranks first.
        var noUnet = item.Mode == RenderModes.HiresStitch || RenderModes.IsUpscaleOnly(item);
        return noUnet ? new UnitShape(item.Model, 0, 0) : new UnitShape(item.Model, item.Width, item.Height);
    }
}

/// <summary>Where a work unit goes.</summary>
internal abstract record PlacementDecision
{
    private PlacementDecision()
    {
    }

    /// <summary>The shared queue: every live worker can take it equally well (or there is no worker yet), so competing consumers balance it.</summary>
    public sealed record Shared : PlacementDecision;

    /// <summary>One worker's own queue: only some workers can take it, or this one takes it more cheaply.</summary>
    public sealed record Direct(WorkerCapacity Worker) : PlacementDecision;

    /// <summary>Workers are live but none can take it now; it stays in the outbox and is placed again later.</summary>
    public sealed record Hold(string Reason) : PlacementDecision;
}

/// <summary>
/// Capability-aware placement, in the manner of MassTransit's job distribution strategy (pick the least-loaded
/// instance whose properties match the job, else the default): a pure function of the unit's shape and the live
/// fleet, so it is unit-tested without a database or a bus.
/// </summary>
/// <remarks>
/// <para>Eligible workers are those whose plan fits the unit's pixels (<see cref="WorkerCapacity.Fits"/>). Models are
/// a preference, not a condition: a worker fetches a model it lacks from the store, so having it costs only time.</para>
/// <para>Ranking among eligible workers: model loaded &gt; installed &gt; neither, then the cheaper strategy (resident),
/// then the lighter load (running + placed but not started), then the id, so the same inputs give the same answer.</para>
/// <para>Shared versus direct: when every live worker is eligible and ranks the same, the shared queue (competing
/// consumers balance best, and the broker redelivers a dead worker's unit). When only some can take it, it goes to
/// the best of those, always. When all can take it but some would do it more cheaply, it goes to the best one only
/// while that worker has fewer than <see cref="PreferredBacklog"/> placed items waiting; beyond that the shared
/// queue, so a preference never piles a job onto one worker while the others idle, and a large item waiting on a
/// large worker's own queue is never stuck behind more than that many small ones.</para>
/// </remarks>
/// <param name="preferredBacklog">Most not-yet-started items a worker's own queue holds for preference alone.</param>
internal sealed class PlacementPolicy(int preferredBacklog)
{
    public int PreferredBacklog { get; } = preferredBacklog >= 1 ? preferredBacklog : throw new ArgumentOutOfRangeException(nameof(preferredBacklog));

    /// <summary>Where the unit goes.</summary>
    /// <param name="unit">The unit's shape.</param>
    /// <param name="live">Workers with a fresh heartbeat that are not draining: the candidates.</param>
    /// <param name="absent">
    /// Workers seen recently but not live now (a missed heartbeat, a restart) and not drained. Never candidates, but
    /// if one of them could not take the unit, the unit does not go to the shared queue, where that worker might
    /// take it on its return and fail it.
    /// </param>
    public PlacementDecision Place(UnitShape unit, IReadOnlyList<WorkerCapacity> live, IReadOnlyList<WorkerCapacity>? absent = null)
    {
        ArgumentNullException.ThrowIfNull(live);
        if (live.Count == 0)
        {
            // No worker yet: the unit waits in the shared queue for whichever comes first.
            return new PlacementDecision.Shared();
        }

        var pixels = unit.Pixels;
        var eligible = live.Where(w => w.Fits(pixels)).ToList();
        if (eligible.Count == 0)
        {
            return new PlacementDecision.Hold(CannotFit(unit, live));
        }

        var ranked = eligible
            .OrderByDescending(w => w.ModelRank(unit.Model))
            .ThenByDescending(w => w.Resident(pixels))
            .ThenBy(w => w.Load)
            .ThenBy(w => w.Id, StringComparer.Ordinal)
            .ToList();
        var best = ranked[0];
        var needed = eligible.Count < live.Count || (absent?.Any(w => !w.Fits(pixels)) ?? false);
        if (!needed && eligible.All(w => Score(w, unit) == Score(best, unit)))
        {
            return new PlacementDecision.Shared();
        }

        // Only workers with their own queue can be sent to alone; older workers take the shared queue only.
        var direct = ranked.FirstOrDefault(w => w.RenderQueue is not null);
        if (direct is null)
        {
            return new PlacementDecision.Shared();
        }

        if (needed)
        {
            return new PlacementDecision.Direct(direct);
        }

        // A preference only: worth a direct send while that worker's own queue is short.
        return Score(direct, unit) == Score(best, unit) && direct.AssignedQueued < PreferredBacklog
            ? new PlacementDecision.Direct(direct)
            : new PlacementDecision.Shared();
    }

    /// <summary>The live worker that can take the largest image (unknown limits count as unlimited); null when none is live.</summary>
    public static WorkerCapacity? Largest(IReadOnlyList<WorkerCapacity> live)
    {
        ArgumentNullException.ThrowIfNull(live);
        return live.OrderByDescending(w => w.MaxPixels <= 0).ThenByDescending(w => w.MaxPixels).ThenBy(w => w.Id, StringComparer.Ordinal).FirstOrDefault();
    }

    /// <summary>The side of the largest square (a multiple of 8) within <paramref name="maxPixels"/>.</summary>
    public static int LargestSquareSide(long maxPixels) => maxPixels <= 0 ? 0 : (int)(Math.Floor(Math.Sqrt(maxPixels)) / 8) * 8;

    /// <summary>Plain words for a unit that no live worker can take.</summary>
    public static string CannotFit(UnitShape unit, IReadOnlyList<WorkerCapacity> live)
    {
        ArgumentNullException.ThrowIfNull(live);
        var largest = Largest(live);
        var c = CultureInfo.InvariantCulture;
        var size = string.Create(c, $"{unit.Width}×{unit.Height}");
        if (largest is null)
        {
            return $"no worker is connected to render {size} with model {unit.Model}.";
        }

        var side = LargestSquareSide(largest.MaxPixels);
        return string.Create(c,
            $"no worker can render {size} with model {unit.Model}: the largest the fleet can take is {side}×{side} ({largest.MaxPixels} pixels; worker {largest.Id}, {FormatBytes(largest.MemoryBudgetBytes)} budget).");
    }

    /// <summary>Bytes in the largest binary unit that keeps the number at least 1 (e.g. "6 GiB", "600 MiB").</summary>
    public static string FormatBytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{(value == Math.Floor(value) ? value.ToString("0", CultureInfo.InvariantCulture) : value.ToString("0.#", CultureInfo.InvariantCulture))} {units[unit]}");
    }

    private static (int Model, bool Resident) Score(WorkerCapacity worker, UnitShape unit) => (worker.ModelRank(unit.Model), worker.Resident(unit.Pixels));
}
