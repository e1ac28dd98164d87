namespace RenderFarm.Coordinator.Auth;

/// <summary>An API key: its public id, the hash of its secret, and what it may do for which tenant.</summary>
public sealed class ApiKeyRow
{
    public const int IdLength = 16;

    public const int MaxTenantLength = 64;

    public const int MaxRoleLength = 16;

    /// <summary>The public part of the key (<c>rf_ID_SECRET</c>): finds the row without scanning hashes; safe to print and log.</summary>
    public required string Id { get; set; }

    public required string Tenant { get; set; }

    public FarmRole Role { get; set; }

    /// <summary>SHA-256 of the whole key; the key itself is never stored.</summary>
    public required byte[] SecretHash { get; set; }

    public DateTime CreatedAt { get; set; }

    /// <summary>When the key stopped being accepted; null while it is valid.</summary>
    public DateTime? RevokedAt { get; set; }
}
