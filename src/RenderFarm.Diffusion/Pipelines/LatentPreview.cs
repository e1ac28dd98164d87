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
