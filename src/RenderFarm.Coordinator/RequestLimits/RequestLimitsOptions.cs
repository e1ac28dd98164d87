namespace RenderFarm.Coordinator.RequestLimits;

/// <summary>Limits on what one HTTP request may send (<c>Coordinator:RequestLimits</c>).</summary>
public sealed class RequestLimitsOptions
{
    public const string SectionName = "Coordinator:RequestLimits";

    /// <summary>Kestrel's own default, kept so that a base64 init image and mask of the largest allowed size fit.</summary>
    public const long DefaultMaxBodyBytes = 30_000_000;

    /// <summary>The largest request body, in bytes; a larger one is answered 413 before it is read.</summary>
    public long MaxBodyBytes { get; set; } = DefaultMaxBodyBytes;
}
