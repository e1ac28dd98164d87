namespace RenderFarm.Diffusion.Models;

/// <summary>VAE decoder: <c>latent_sample</c> [n, 4, h, w] → <c>sample</c> [n, 3, 8h, 8w] in [-1, 1].</summary>
public sealed class VaeDecoder
{
    public const string LatentSample = "latent_sample";
    public const string Sample = "sample";

    public VaeDecoder(string path, ExecutionOptions options) =>
        Component = new OnnxComponent(path, options, [TensorRequirement.Floating(LatentSample, 4)], [TensorRequirement.Floating(Sample, 4)]);

    public OnnxComponent Component { get; }

    /// <summary>Decodes one latent (already divided by the scaling factor) to CHW pixels in model range.</summary>
    public float[] Decode(ReadOnlySpan<float> latent, int latentHeight, int latentWidth) =>
        ComponentRunner.RunFloat(Component, LatentSample, latent, [1, 4, latentHeight, latentWidth], Sample).Data;
}

/// <summary>VAE encoder: <c>sample</c> [n, 3, H, W] in [-1, 1] → <c>latent_sample</c> [n, 4, H/8, W/8].</summary>
public sealed class VaeEncoder
{
    public const string Sample = "sample";
    public const string LatentSample = "latent_sample";

    public VaeEncoder(string path, ExecutionOptions options) =>
        Component = new OnnxComponent(path, options, [TensorRequirement.Floating(Sample, 4)], [TensorRequirement.Floating(LatentSample, 4)]);

    public OnnxComponent Component { get; }

    /// <summary>Encodes one CHW image in model range to its latent (before the scaling factor is applied).</summary>
    public float[] Encode(ReadOnlySpan<float> pixels, int height, int width) =>
        ComponentRunner.RunFloat(Component, Sample, pixels, [1, 3, height, width], LatentSample).Data;
}
