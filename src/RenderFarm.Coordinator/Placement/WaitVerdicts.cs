using System.Globalization;
using RenderFarm.Contracts;

namespace RenderFarm.Coordinator.Placement;

/// <summary>Reason codes of <see cref="WaitVerdicts"/>, as the monitoring API returns them.</summary>
public static class WaitReasons
{
    /// <summary>No heartbeat within the lease: the worker is not connected.</summary>
    public const string Gone = "gone";

    /// <summary>Still probing its device or loading its first model.</summary>
    public const string Starting = "starting";

    /// <summary>Finishing its items before shutdown; takes nothing new.</summary>
    public const string Draining = "draining";

    /// <summary>Its memory budget plans no strategy for the job's largest item.</summary>
    public const string TooSmall = "too-small";

    /// <summary>Rendering other items now.</summary>
    public const string Busy = "busy";

    /// <summary>The model is neither loaded nor on its disk: it would fetch it first (slower, not a refusal).</summary>
    public const string ModelMissing = "model-missing";
}

/// <summary>
/// Why each worker is or is not taking a waiting job now, judged by the same rules as placement
/// (<see cref="PlacementPolicy"/>, <see cref="WorkerCapacity.Fits"/>, <see cref="WorkerCapacity.ModelRank"/>): pure,
/// so the CLI and the dashboard (through the monitoring API) tell the same story as the dispatcher acts on.
/// </summary>
internal static class WaitVerdicts
{
    /// <param name="unit">The job's largest item.</param>
    /// <param name="worker">The worker's capacity as its last heartbeat described it.</param>
    /// <param name="state">Its reported state.</param>
    /// <param name="live">Whether its heartbeat is fresh.</param>
    /// <returns>Whether it can take the job now, the reason codes (<see cref="WaitReasons"/>) and plain words.</returns>
    public static (bool CanTake, IReadOnlyList<string> Reasons, string Explanation) Judge(UnitShape unit, WorkerCapacity worker, WorkerState state, bool live)
    {
        ArgumentNullException.ThrowIfNull(worker);
        var c = CultureInfo.InvariantCulture;
        if (!live)
        {
            return (false, [WaitReasons.Gone], "no heartbeat within the lease: not connected.");
        }

        if (state == WorkerState.Draining)
        {
            return (false, [WaitReasons.Draining], "draining before shutdown: takes no new work.");
        }

        if (state == WorkerState.Starting)
        {
            return (false, [WaitReasons.Starting], "starting up: takes no work yet.");
        }

        List<string> reasons = [];
        List<string> words = [];
        if (!worker.Fits(unit.Pixels))
        {
            reasons.Add(WaitReasons.TooSmall);
            var side = PlacementPolicy.LargestSquareSide(worker.MaxPixels);
            words.Add(string.Create(c, $"too small: its {PlacementPolicy.FormatBytes(worker.MemoryBudgetBytes)} budget plans at most {worker.MaxPixels} pixels (about {side}×{side}), the job needs {unit.Width}×{unit.Height}."));
        }

        if (worker.Running > 0)
        {
            reasons.Add(WaitReasons.Busy);
            words.Add(worker.AssignedQueued > 0
                ? string.Create(c, $"busy: rendering {worker.Running} item(s), {worker.AssignedQueued} more placed on it.")
                : string.Create(c, $"busy: rendering {worker.Running} item(s)."));
        }

        if (worker.ModelRank(unit.Model) == 0)
        {
            reasons.Add(WaitReasons.ModelMissing);
            words.Add($"model '{unit.Model}' missing: it would fetch it from the store first.");
        }

        // A missing model slows a worker down but does not stop it taking the job (placement only prefers others).
        var canTake = !reasons.Contains(WaitReasons.TooSmall) && !reasons.Contains(WaitReasons.Busy);
        var explanation = words.Count == 0 ? "idle and able to take it." : string.Join(" ", words);
        return (canTake, reasons, explanation);
    }
}
