using RenderFarm.Diffusion.Memory;

namespace RenderFarm.Diffusion.Models;

/// <summary>VAE decoder: <c>latent_sample</c> [n, 4, h, w] → <c>sample</c> [n, 3, 8h, 8w] in [-1, 1].</summary>
public sealed class VaeDecoder
{
    public const string LatentSample = "latent_sample";
    public const string Sample = "sample";

    public VaeDecoder(string path, ExecutionOptions options)
    {
        Component = new OnnxComponent(path, options, [TensorRequirement.Floating(LatentSample, 4)], [TensorRequirement.Floating(Sample, 4)]);
        Shared = new SharedGroupNorm(
            new OnnxComponent(path, options, [TensorRequirement.Floating(LatentSample, 4)], [TensorRequirement.Floating(Sample, 4)], SharedGroupNorm.Rewrite),
            LatentSample, Sample);
    }

    public OnnxComponent Component { get; }

    /// <summary>The same decoder rewritten to take GroupNorm statistics from outside, for tiled decodes.</summary>
    public OnnxComponent SharedStatisticsComponent => Shared.Component;

    /// <summary>Why tiled decodes of this model normalise each tile with its own statistics; null when they share them (or none ran yet).</summary>
    public string? SharedStatisticsUnavailable => Shared.Unavailable;

    internal SharedGroupNorm Shared { get; }

    /// <summary>Decodes one latent (already divided by the scaling factor) to CHW pixels in model range.</summary>
    public float[] Decode(ReadOnlySpan<float> latent, int latentHeight, int latentWidth)
    {
        // The two graphs are alternatives: a worker holds one decoder's weights at a time.
        Shared.Component.Unload();
        return ComponentRunner.RunFloat(Component, LatentSample, latent, [1, 4, latentHeight, latentWidth], Sample).Data;
    }

    /// <summary>
    /// Decodes tile by tile, every tile normalised with the same GroupNorm statistics (estimated from the whole latent);
    /// with per-tile statistics when the model's graph cannot take given ones (<see cref="SharedStatisticsUnavailable"/>).
    /// </summary>
    internal float[] DecodeTiled(ReadOnlySpan<float> latent, int latentHeight, int latentWidth, TileSize tile, CancellationToken cancellationToken)
    {
        Component.Unload();
        return Shared.Run(latent, 4, 1, 3, VaeScale, latentHeight, latentWidth, tile, cancellationToken)
            ?? TiledRunner.Run(latent, 4, 1, 3, VaeScale, latentHeight, latentWidth, tile,
                (t, h, w) => ComponentRunner.RunFloat(Component, LatentSample, t, [1, 4, h, w], Sample).Data, cancellationToken);
    }

    private const int VaeScale = 8;
}

/// <summary>VAE encoder: <c>sample</c> [n, 3, H, W] in [-1, 1] → <c>latent_sample</c> [n, 4, H/8, W/8].</summary>
public sealed class VaeEncoder
{
    public const string Sample = "sample";
    public const string LatentSample = "latent_sample";

    public VaeEncoder(string path, ExecutionOptions options)
    {
        Component = new OnnxComponent(path, options, [TensorRequirement.Floating(Sample, 4)], [TensorRequirement.Floating(LatentSample, 4)]);
        Shared = new SharedGroupNorm(
            new OnnxComponent(path, options, [TensorRequirement.Floating(Sample, 4)], [TensorRequirement.Floating(LatentSample, 4)], SharedGroupNorm.Rewrite),
            Sample, LatentSample);
    }

    public OnnxComponent Component { get; }

    /// <summary>The same encoder rewritten to take GroupNorm statistics from outside, for tiled encodes.</summary>
    public OnnxComponent SharedStatisticsComponent => Shared.Component;

    /// <summary>Why tiled encodes of this model normalise each tile with its own statistics; null when they share them (or none ran yet).</summary>
    public string? SharedStatisticsUnavailable => Shared.Unavailable;

    internal SharedGroupNorm Shared { get; }

    /// <summary>Encodes one CHW image in model range to its latent (before the scaling factor is applied).</summary>
    public float[] Encode(ReadOnlySpan<float> pixels, int height, int width)
    {
        Shared.Component.Unload();
        return ComponentRunner.RunFloat(Component, Sample, pixels, [1, 3, height, width], LatentSample).Data;
    }

    /// <summary>Encodes tile by tile with shared GroupNorm statistics, as <see cref="VaeDecoder.DecodeTiled"/> decodes.</summary>
    internal float[] EncodeTiled(ReadOnlySpan<float> pixels, int latentHeight, int latentWidth, TileSize tile, CancellationToken cancellationToken)
    {
        Component.Unload();
        return Shared.Run(pixels, 3, VaeScale, 4, 1, latentHeight, latentWidth, tile, cancellationToken)
            ?? TiledRunner.Run(pixels, 3, VaeScale, 4, 1, latentHeight, latentWidth, tile,
                (t, h, w) => ComponentRunner.RunFloat(Component, Sample, t, [1, 3, h, w], LatentSample).Data, cancellationToken);
    }

    private const int VaeScale = 8;
}
