namespace RenderFarm.Coordinator.Auth;

/// <summary>What a key may do. Stored by name on the key's row, so a role's name is wire format.</summary>
public enum FarmRole
{
    /// <summary>Reads every job, image and the fleet; acts on nothing.</summary>
    Viewer,

    /// <summary>Submits jobs and reads, cancels, retries and deletes its own tenant's jobs only.</summary>
    Submitter,

    /// <summary>Sees the fleet and acts on any job (cancel, retry, delete, replay dead letters, set the A1111 checkpoint).</summary>
    Operator,

    /// <summary>Everything an operator does, and manages keys.</summary>
    Admin,
}

/// <summary>Authorization policies; each route names the one it needs.</summary>
public static class FarmPolicies
{
    /// <summary>Any valid key (or an open farm): reads, scoped to the tenant for submitters.</summary>
    public const string Read = "renderfarm:read";

    /// <summary>Submit jobs, and cancel, retry or delete them (submitters only their tenant's).</summary>
    public const string Submit = "renderfarm:submit";

    /// <summary>Read the fleet: workers, queues, the waiting queue, dead letters. Not submitters.</summary>
    public const string Fleet = "renderfarm:fleet";

    /// <summary>Farm-wide actions: replay dead letters, set the farm's A1111 checkpoint.</summary>
    public const string Operate = "renderfarm:operate";

    /// <summary>Manage keys.</summary>
    public const string Admin = "renderfarm:admin";
}

/// <summary>Claim types the key handler puts on its principal.</summary>
public static class FarmClaims
{
    public const string Tenant = "renderfarm:tenant";

    /// <summary>The tenant of an open farm's callers and of jobs submitted before keys existed.</summary>
    public const string DefaultTenant = "default";
}
