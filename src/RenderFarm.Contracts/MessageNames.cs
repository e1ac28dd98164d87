namespace RenderFarm.Contracts;

/// <summary>
/// Wire names of every message on the bus, one place for all of them.
/// </summary>
/// <remarks>
/// These strings are wire format: a class rename must never change them, and changing one strands every
/// message already queued under the old name. To evolve a message, add a new name (…:v2) and keep the old
/// one as an alias until the queues have drained. The host maps them onto its transport (for MassTransit,
/// as message URNs); Contracts cannot do that itself because it takes no package dependencies.
/// </remarks>
public static class MessageNames
{
    private const string Prefix = "urn:message:RenderFarm:";

    public const string RenderWorkUnit = Prefix + "RenderWorkUnit:v1";
    public const string CancelJob = Prefix + "CancelJob:v1";
    public const string ItemStarted = Prefix + "ItemStarted:v1";
    public const string ItemsStarted = Prefix + "ItemsStarted:v1";
    public const string ItemProgressed = Prefix + "ItemProgressed:v1";
    public const string ItemPreviewed = Prefix + "ItemPreviewed:v1";
    public const string ItemRendered = Prefix + "ItemRendered:v1";
    public const string ItemsRendered = Prefix + "ItemsRendered:v1";
    public const string ItemFailed = Prefix + "ItemFailed:v1";
    public const string JobCanceled = Prefix + "JobCanceled:v1";
    public const string WorkerHeartbeat = Prefix + "WorkerHeartbeat:v1";

    /// <summary>Every message type with its wire name, for hosts that register them in one loop.</summary>
    public static IReadOnlyDictionary<Type, string> ByType { get; } = new Dictionary<Type, string>
    {
        [typeof(Contracts.RenderWorkUnit)] = RenderWorkUnit,
        [typeof(Contracts.CancelJob)] = CancelJob,
        [typeof(Contracts.ItemStarted)] = ItemStarted,
        [typeof(Contracts.ItemsStarted)] = ItemsStarted,
        [typeof(Contracts.ItemProgressed)] = ItemProgressed,
        [typeof(Contracts.ItemPreviewed)] = ItemPreviewed,
        [typeof(Contracts.ItemRendered)] = ItemRendered,
        [typeof(Contracts.ItemsRendered)] = ItemsRendered,
        [typeof(Contracts.ItemFailed)] = ItemFailed,
        [typeof(Contracts.JobCanceled)] = JobCanceled,
        [typeof(Contracts.WorkerHeartbeat)] = WorkerHeartbeat,
    };
}
