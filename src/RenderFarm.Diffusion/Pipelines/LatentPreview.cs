using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Pipelines;

/// <summary>
/// A linear latent→RGB approximation of SD 1.x's VAE, at latent resolution: cheap enough for every step, close enough
/// to see composition and colour emerge. The 4×3 factors are the least-squares fit the community uses for SD 1.x
/// previews (AUTOMATIC1111's "Approx cheap").
/// </summary>
public static class LatentPreview
{
    private static readonly float[,] Factors =
    {
        { 0.298f, 0.207f, 0.208f },
        { 0.187f, 0.286f, 0.173f },
        { -0.158f, 0.189f, 0.264f },
        { -0.184f, -0.271f, -0.473f },
    };

    /// <summary>Renders one image's latent (4 planes of h×w, unscaled) as an h×w RGB preview.</summary>
    public static RgbImage Render(ReadOnlySpan<float> latent, int latentHeight, int latentWidth)
    {
        var plane = latentHeight * latentWidth;
        var pixels = new byte[plane * 3];
        for (var i = 0; i < plane; i++)
        {
            for (var c = 0; c < 3; c++)
            {
                var v = 0f;
                for (var k = 0; k < 4; k++)
                {
                    v += latent[k * plane + i] * Factors[k, c];
                }

                pixels[i * 3 + c] = (byte)Math.Clamp((v + 1f) * 127.5f, 0f, 255f);
            }
        }

        return new RgbImage(latentWidth, latentHeight, pixels);
    }
}

/// <summary>
/// A batch's latents during denoising, rendered through <see cref="LatentPreview"/> on request. It reads the live buffer
/// the loop steps in place, so a preview is only meaningful while the step that handed it out is being reported.
/// </summary>
public sealed class LatentPreviewSource
{
    private readonly float[] _latents;
    private readonly int _imageLength;

    internal LatentPreviewSource(float[] latents, int imageLength, int latentHeight, int latentWidth)
    {
        _latents = latents;
        _imageLength = imageLength;
        LatentHeight = latentHeight;
        LatentWidth = latentWidth;
    }

    /// <summary>Images in the batch.</summary>
    public int Images => _latents.Length / _imageLength;

    /// <summary>Height of a preview: the latent's, one eighth of the image's for SD.</summary>
    public int LatentHeight { get; }

    /// <summary>Width of a preview.</summary>
    public int LatentWidth { get; }

    /// <summary>A preview of image <paramref name="image"/> (0-based, in the batch's order) as it stands now.</summary>
    public RgbImage Render(int image)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(image);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(image, Images);
        return LatentPreview.Render(_latents.AsSpan(image * _imageLength, _imageLength), LatentHeight, LatentWidth);
    }
}
