using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Safety;

/// <summary>
/// CLIP's image preprocessing as transformers' <c>CLIPImageProcessor</c> does it for the safety checker: resize so the
/// shortest side is 224 (bicubic, through PIL), centre-crop 224×224, scale to [0, 1], normalise per channel with
/// CLIP's mean and standard deviation; planar [3, 224, 224].
/// </summary>
/// <remarks>
/// The resize is written here rather than done by SkiaSharp: Skia's cubic sampler keeps its kernel at ±2 source pixels
/// when shrinking (no antialiasing), while PIL widens it by the scale factor, and the checker was trained on PIL's
/// output. This follows PIL's 8-bit resampler: Keys' cubic with a = −0.5, the kernel stretched when shrinking, taps
/// clipped at the borders and renormalised, horizontal pass then vertical, each rounded to 8 bits; PIL's fixed-point
/// weights can still differ from these by one grey level in rare pixels.
/// </remarks>
public static class ClipImageProcessor
{
    public const int Size = 224;
    public static ReadOnlySpan<float> Mean => [0.48145466f, 0.4578275f, 0.40821073f];
    public static ReadOnlySpan<float> Std => [0.26862954f, 0.26130258f, 0.27577711f];

    /// <summary>The checker's <c>clip_input</c> for one image: planar RGB, 3×224×224.</summary>
    public static float[] Preprocess(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (width, height) = ResizedSize(image.Width, image.Height);
        var resized = ResizeBicubic(image, width, height);
        var left = (width - Size) / 2;
        var top = (height - Size) / 2;
        var planes = new float[3 * Size * Size];
        for (var c = 0; c < 3; c++)
        {
            var mean = Mean[c];
            var std = Std[c];
            for (var y = 0; y < Size; y++)
            {
                for (var x = 0; x < Size; x++)
                {
                    var value = resized.Pixels[(((top + y) * width) + left + x) * 3 + c] / 255f;
                    planes[(c * Size + y) * Size + x] = (value - mean) / std;
                }
            }
        }

        return planes;
    }

    /// <summary>transformers' shortest-edge size: the short side becomes 224, the long side <c>int(224 · long / short)</c>.</summary>
    public static (int Width, int Height) ResizedSize(int width, int height) =>
        width <= height
            ? (Size, (int)((long)Size * height / width))
            : ((int)((long)Size * width / height), Size);

    /// <summary>PIL's bicubic resize of an 8-bit RGB image.</summary>
    public static RgbImage ResizeBicubic(RgbImage image, int width, int height)
    {
        var horizontal = image.Width == width ? image : Pass(image, width, image.Height, Taps(image.Width, width), alongX: true);
        return horizontal.Height == height ? horizontal : Pass(horizontal, width, height, Taps(horizontal.Height, height), alongX: false);
    }

    private readonly record struct Tap(int First, double[] Weights);

    private static RgbImage Pass(RgbImage source, int width, int height, Tap[] taps, bool alongX)
    {
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var tap = taps[alongX ? x : y];
                for (var c = 0; c < 3; c++)
                {
                    var sum = 0.0;
                    for (var k = 0; k < tap.Weights.Length; k++)
                    {
                        var index = alongX
                            ? ((y * source.Width) + tap.First + k) * 3 + c
                            : (((tap.First + k) * source.Width) + x) * 3 + c;
                        sum += tap.Weights[k] * source.Pixels[index];
                    }

                    pixels[(y * width + x) * 3 + c] = (byte)Math.Clamp(Math.Round(sum, MidpointRounding.AwayFromZero), 0, 255);
                }
            }
        }

        return new RgbImage(width, height, pixels);
    }

    private static Tap[] Taps(int sourceLength, int targetLength)
    {
        const double support = 2.0;
        var scale = (double)sourceLength / targetLength;
        var stretch = Math.Max(scale, 1.0);
        var radius = support * stretch;
        var taps = new Tap[targetLength];
        for (var i = 0; i < targetLength; i++)
        {
            var centre = (i + 0.5) * scale;
            var first = Math.Max((int)(centre - radius + 0.5), 0);
            var end = Math.Min((int)(centre + radius + 0.5), sourceLength);
            var weights = new double[end - first];
            var sum = 0.0;
            for (var k = 0; k < weights.Length; k++)
            {
                weights[k] = Cubic((first + k - centre + 0.5) / stretch);
                sum += weights[k];
            }

            for (var k = 0; k < weights.Length; k++)
            {
                weights[k] = sum != 0 ? weights[k] / sum : 0;
            }

            taps[i] = new Tap(first, weights);
        }

        return taps;
    }

    private static double Cubic(double x)
    {
        const double a = -0.5;
        x = Math.Abs(x);
        if (x < 1)
        {
            return (((a + 2) * x) - (a + 3)) * x * x + 1;
        }

        return x < 2 ? ((((x - 5) * x) + 8) * x - 4) * a : 0;
    }
}
