namespace RenderFarm.Telemetry;

/// <summary>
/// Attribute names the farm's spans and metrics share, so a trace, a Prometheus label and a Grafana query spell them
/// the same way. Dots become underscores in Prometheus (<c>renderfarm.model</c> is the label <c>renderfarm_model</c>).
/// </summary>
public static class RenderFarmTags
{
    public const string JobId = "renderfarm.job.id";
    public const string ItemId = "renderfarm.item.id";
    public const string ItemIndex = "renderfarm.item.index";
    public const string ItemCount = "renderfarm.item.count";
    public const string Model = "renderfarm.model";
    public const string Mode = "renderfarm.mode";
    public const string Size = "renderfarm.size";
    public const string SizeClass = "renderfarm.size_class";
    public const string Sampler = "renderfarm.sampler";
    public const string Strategy = "renderfarm.strategy";
    public const string State = "renderfarm.state";
    public const string Worker = "renderfarm.worker";

    /// <summary>
    /// A coarse bucket of an image's pixel count (<c>s</c> up to 256², <c>m</c> up to 512², <c>l</c> up to 1024²,
    /// <c>xl</c> above): exact sizes would give every sweep its own series, and render time grows with pixels.
    /// </summary>
    public static string SizeClassOf(int width, int height)
    {
        var pixels = (long)width * height;
        return pixels <= 256 * 256 ? "s" : pixels <= 512 * 512 ? "m" : pixels <= 1024 * 1024 ? "l" : "xl";
    }

    /// <summary><c>WIDTHxHEIGHT</c>, for spans (never for metric labels: see <see cref="SizeClassOf"/>).</summary>
    public static string SizeOf(int width, int height) => $"{width}x{height}";
}
