using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Randomness;
using RenderFarm.Diffusion.Tokenizers;
using RenderFarm.ModelGenerator;

namespace RenderFarm.Diffusion.Tests.Pipelines;

/// <summary>What the oracle model must produce, computed from its published math rather than from the engine.</summary>
internal static class OracleExpectations
{
    public const float Scaling = 0.18215f;

    /// <summary>μ the guided UNet denoises towards: μ_u + g(μ_c − μ_u), or μ_c without guidance.</summary>
    public static float[] GuidedTarget(ClipTokenizer tokenizer, string prompt, string negative, double guidance)
    {
        var conditional = OracleReference.TargetLatent(OracleReference.TextHidden(tokenizer.Encode(prompt).Ids));
        if (guidance <= 1)
        {
            return conditional;
        }

        var unconditional = OracleReference.TargetLatent(OracleReference.TextHidden(tokenizer.Encode(negative).Ids));
        return [.. conditional.Select((c, i) => (float)(unconditional[i] + guidance * (c - unconditional[i])))];
    }

    /// <summary>Torch's starting noise for <paramref name="seed"/>, shape [1, 4, h, w].</summary>
    public static float[] Noise(ulong seed, int latentHeight, int latentWidth)
    {
        var noise = new float[4 * latentHeight * latentWidth];
        new TorchCpuGenerator(seed).FillNormal(noise);
        return noise;
    }

    /// <summary>The decoded image of a latent (NCHW, one image, in the pipeline's scaled space).</summary>
    public static byte[] Decode(ReadOnlySpan<float> latent, int latentHeight, int latentWidth)
    {
        var plane = latentHeight * latentWidth;
        var width = latentWidth * 8;
        var pixels = new byte[width * latentHeight * 8 * 3];
        Span<float> z = stackalloc float[4];
        for (var y = 0; y < latentHeight * 8; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var cell = y / 8 * latentWidth + x / 8;
                for (var c = 0; c < 4; c++)
                {
                    z[c] = latent[c * plane + cell] / Scaling;
                }

                var rgb = OracleReference.DecodePixel(z);
                for (var c = 0; c < 3; c++)
                {
                    pixels[(y * width + x) * 3 + c] = (byte)MathF.Round(Math.Clamp(rgb[c] / 2f + 0.5f, 0f, 1f) * 255f);
                }
            }
        }

        return pixels;
    }

    public static float[] Flat(float[] target, int latentHeight, int latentWidth)
    {
        var plane = latentHeight * latentWidth;
        var latent = new float[4 * plane];
        for (var c = 0; c < 4; c++)
        {
            Array.Fill(latent, target[c], c * plane, plane);
        }

        return latent;
    }

    /// <summary>
    /// DDIM (η = 0) with an exact noise prediction keeps the "effective noise" e = (x_t − √ᾱ_t·μ)/√(1−ᾱ_t) constant, so
    /// it ends at √ᾱ_final·μ + √(1−ᾱ_final)·e, where e comes from the first sample of the loop.
    /// </summary>
    public static float[] DdimResult(ReadOnlySpan<float> firstSample, double firstTimestep, float[] target, int latentHeight, int latentWidth)
    {
        var plane = latentHeight * latentWidth;
        var alpha = (double)OracleReference.AlphaCumprod(firstTimestep);
        var final = 1 - 0.00085; // set_alpha_to_one = false: ᾱ_final = alphas_cumprod[0] = 1 − β_0
        var result = new float[4 * plane];
        for (var i = 0; i < result.Length; i++)
        {
            var mu = target[i / plane];
            var e = (firstSample[i] - Math.Sqrt(alpha) * mu) / Math.Sqrt(1 - alpha);
            result[i] = (float)(Math.Sqrt(final) * mu + Math.Sqrt(1 - final) * e);
        }

        return result;
    }

    /// <summary>An image whose colour is constant on each 8×8 block, so the oracle VAE round-trips it exactly.</summary>
    public static RgbImage BlockImage(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var bx = x / 8;
                var by = y / 8;
                pixels[(y * width + x) * 3] = (byte)(60 + bx * 20 % 140);
                pixels[(y * width + x) * 3 + 1] = (byte)(80 + by * 25 % 120);
                pixels[(y * width + x) * 3 + 2] = (byte)(100 + (bx + by) * 15 % 100);
            }
        }

        return new RgbImage(width, height, pixels);
    }

    public static int MaxDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        a.Length.ShouldBe(b.Length);
        var max = 0;
        for (var i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
    }

    public static GenerationRequest Request(string sampler, ulong seed = 42, double guidance = 2.0) => new()
    {
        Images = [new ImageSpec("a lighthouse at dusk", "blurry", seed)],
        Width = 64,
        Height = 48,
        Steps = 12,
        GuidanceScale = guidance,
        Sampler = sampler,
    };
}
