namespace RenderFarm.Domain.States;

/// <summary>The allowed moves between <see cref="JobState"/>s, and how a job's state follows from its items.</summary>
public static class JobStateMachine
{
    private static readonly Dictionary<JobState, JobState[]> Allowed = new()
    {
        // Queued → Succeeded/Failed directly is impossible: an item must run before it can finish.
        [JobState.Queued] = [JobState.Running, JobState.Canceled],
        [JobState.Running] = [JobState.Succeeded, JobState.CompletedWithErrors, JobState.Failed, JobState.Canceled],
        [JobState.Succeeded] = [],
        [JobState.Failed] = [],
        [JobState.Canceled] = [],
        [JobState.CompletedWithErrors] = [],
    };

    /// <summary>True when a job may move from <paramref name="from"/> to <paramref name="to"/>. Staying put is not a move.</summary>
    public static bool CanMove(JobState from, JobState to) =>
        Allowed.TryGetValue(from, out var targets) && Array.IndexOf(targets, to) >= 0;

    /// <summary>Returns <paramref name="to"/> when the move is allowed.</summary>
    /// <exception cref="InvalidStateTransitionException">The move is not allowed.</exception>
    public static JobState Move(JobState from, JobState to) =>
        CanMove(from, to) ? to : throw new InvalidStateTransitionException("job", from.ToString(), to.ToString());

    /// <summary>True for states nothing moves a job out of.</summary>
    public static bool IsFinal(JobState state) => state is JobState.Succeeded or JobState.CompletedWithErrors or JobState.Failed or JobState.Canceled;

    /// <summary>Every final state, for queries that select finished jobs.</summary>
    public static IReadOnlyList<JobState> FinalStates { get; } = [JobState.Succeeded, JobState.CompletedWithErrors, JobState.Failed, JobState.Canceled];

    /// <summary>
    /// The state a job's items put it in, for a job that has not been canceled (cancellation is decided for the
    /// job, not derived). Counts come from one aggregate query, so this never needs the items themselves.
    /// </summary>
    /// <param name="counts">The job's items by state.</param>
    /// <param name="partialSuccess">
    /// Whether the job's images stand alone, so that some failures leave a usable partial result
    /// (<see cref="JobState.CompletedWithErrors"/>). False for a hires job, whose items are parts of one image.
    /// </param>
    public static JobState Derive(ItemCounts counts, bool partialSuccess = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(counts.Total, nameof(counts));
        if (counts.Unfinished > 0)
        {
            return counts.Queued == counts.Total ? JobState.Queued : JobState.Running;
        }

        if (counts.Failed > 0)
        {
            return partialSuccess && counts.Succeeded > 0 ? JobState.CompletedWithErrors : JobState.Failed;
        }

        return counts.Canceled > 0 ? JobState.Canceled : JobState.Succeeded;
    }
}

/// <summary>How many of a job's items are in each state.</summary>
public readonly record struct ItemCounts(long Queued, long Running, long Retrying, long Succeeded, long Failed, long Canceled)
{
    public long Total => Queued + Running + Retrying + Succeeded + Failed + Canceled;

    public long Unfinished => Queued + Running + Retrying;
}
