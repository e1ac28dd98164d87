using System.Diagnostics;

namespace RenderFarm.Diffusion.Pipelines;

/// <summary>
/// The engine's spans: one per stage of a render (text encode, VAE encode, denoise, VAE decode), never per step, so a
/// trace shows where a render's time went at the cost of four spans. A BCL <see cref="ActivitySource"/>: the engine
/// knows nothing of the farm or OpenTelemetry, and costs nothing when no host listens.
/// </summary>
public static class EngineActivity
{
    /// <summary>The source name; hosts subscribe to it (the farm's telemetry lists it as <c>RenderFarm.Engine</c>).</summary>
    public const string SourceName = "RenderFarm.Engine";

    internal static ActivitySource Source { get; } = new(SourceName);

    internal static Activity? Stage(string name, GenerationRequest request)
    {
        var activity = Source.StartActivity(name);
        activity?.SetTag("renderfarm.item.count", request.Images.Count);
        return activity;
    }
}
