namespace RenderFarm.Coordinator.Auth;

/// <summary>Whether the coordinator asks for API keys, bound from <c>Coordinator:Auth</c>.</summary>
public sealed class AuthOptions
{
    public const string SectionName = "Coordinator:Auth";

    /// <summary>
    /// True (the default for the distributed coordinator): every route but <c>/health</c>, <c>/alive</c>,
    /// <c>/metrics</c> and the OpenAPI document needs a key. A coordinator is meant to be reached over a network,
    /// so it is closed unless its operator opens it (as Redis's protected mode is); the embedded <c>renderfarm
    /// serve</c> sets it from its bind address. False: requests without a key act as an admin of the default tenant;
    /// a key that is sent is still checked and its tenant and role still apply.
    /// </summary>
    public bool RequireApiKeys { get; set; } = true;

    /// <summary>
    /// Most items one tenant may have waiting (queued or retrying, over its unfinished jobs) counting the job being
    /// submitted (a hires job counts as one); a submission past it is refused with 429 naming the quota. 0: no quota.
    /// </summary>
    public long MaxQueuedItemsPerTenant { get; set; }

    /// <summary>
    /// Largest image (width × height; a hires job's final size) one tenant's job may ask for, below the farm's own
    /// limits; a larger one is refused with 403 naming the quota. 0: no quota.
    /// </summary>
    public long MaxImagePixelsPerTenant { get; set; }

    /// <summary>
    /// Most hires jobs one tenant may have unfinished at once (each spreads its tiles over the fleet); one more is
    /// refused with 429 naming the quota. 0: no quota.
    /// </summary>
    public int MaxConcurrentHiresJobsPerTenant { get; set; }
}
