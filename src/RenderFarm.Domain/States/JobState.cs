namespace RenderFarm.Domain.States;

/// <summary>
/// Where a job stands. A job's state follows its items: <see cref="JobStateMachine.Derive"/> computes it from
/// their counts, and only cancellation is decided for the job itself. Numeric values are persisted, so
/// members are never renumbered.
/// </summary>
public enum JobState
{
    /// <summary>
    /// Accepted (the client has its 202) and written with its items, none started yet. The coordinator moves it
    /// to <see cref="Running"/> when the first item starts, or to <see cref="Canceled"/> on a cancel request.
    /// </summary>
    Queued = 0,

    /// <summary>
    /// At least one item has started and not all have finished. The coordinator moves it to a final state when
    /// its last item finishes, or to <see cref="Canceled"/> on a cancel request.
    /// </summary>
    Running = 1,

    /// <summary>
    /// Final: every item has its image. Nothing moves it on; retention (not this enum) decides when its rows
    /// and artifacts are deleted.
    /// </summary>
    Succeeded = 2,

    /// <summary>
    /// Final: every item has finished, at least one failed for good and none succeeded (or a hires job lost a part,
    /// so its one image cannot exist). A retry of its failed items opens it again.
    /// </summary>
    Failed = 3,

    /// <summary>
    /// Final: a client canceled it; items that had not finished were canceled, finished images are kept.
    /// Nothing moves it on.
    /// </summary>
    Canceled = 4,

    /// <summary>
    /// Final: every item has finished, some with their image and some failed for good after their attempts: a
    /// partial dataset, kept, whose failures the manifest names. A retry of the failed items opens it again.
    /// </summary>
    CompletedWithErrors = 5,
}

/// <summary>
/// Where one item stands. Numeric values are persisted, so members are never renumbered.
/// </summary>
public enum ItemState
{
    /// <summary>
    /// Waiting for a worker. The dispatcher publishes it in a work unit; the coordinator moves it to
    /// <see cref="Running"/> when a worker reports it started (the item then holds a lease), or to
    /// <see cref="Canceled"/> when its job is canceled.
    /// </summary>
    Queued = 0,

    /// <summary>
    /// A worker holds its lease and is rendering it. The coordinator moves it on when the worker reports: to
    /// <see cref="Succeeded"/> on a rendered image, to <see cref="Retrying"/> on a retryable failure with
    /// attempts left, to <see cref="Failed"/> otherwise. The lease rescuer moves it to <see cref="Retrying"/>
    /// (or <see cref="Failed"/> when out of attempts) when the worker's heartbeats stop and the lease lapses.
    /// A cancel moves it to <see cref="Canceled"/>.
    /// </summary>
    Running = 1,

    /// <summary>
    /// An attempt failed and another is allowed; the item waits out its backoff
    /// (<see cref="Policies.RetryPolicy.BackoffAfter"/>). The rescuer moves it back to <see cref="Queued"/> when
    /// the backoff has passed; a cancel moves it to <see cref="Canceled"/>.
    /// </summary>
    Retrying = 2,

    /// <summary>Final: its image is in the artifact store. Duplicate completions change nothing.</summary>
    Succeeded = 3,

    /// <summary>Final: failed for good (not retryable, or out of attempts); carries the last failure reason.</summary>
    Failed = 4,

    /// <summary>Final: its job was canceled before the item finished.</summary>
    Canceled = 5,
}
