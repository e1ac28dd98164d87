using RenderFarm.Diffusion.Imaging;
using RenderFarm.ModelGenerator;
using RenderFarm.ModelGenerator.Upscaler;

namespace RenderFarm.Diffusion.Tests.Upscaling;

/// <summary>The tiny upscaler at ×2 and ×4, generated once into a temporary folder.</summary>
public sealed class TinyUpscalerFixture : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("renderfarm-upscaler-").FullName;

    public TinyUpscalerFixture()
    {
        X2 = TestModels.EnsureTinyUpscaler(Path.Combine(_root, "tiny-upscaler-x2"), new TinyUpscalerOptions(2));
        X4 = TestModels.EnsureTinyUpscaler(Path.Combine(_root, "tiny-upscaler-x4"), new TinyUpscalerOptions(4));
    }

    public string X2 { get; }
    public string X4 { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}

/// <summary>The tiny upscaler's closed form, computed on bytes without ONNX (models/README.md states it).</summary>
public static class TinyUpscalerReference
{
    public static RgbImage Upscale(RgbImage image, int scale)
    {
        ArgumentNullException.ThrowIfNull(image);
        int w = image.Width * scale, h = image.Height * scale;
        var pixels = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                var offset = TinyUpscaler.OffsetBytes(scale, y % scale, x % scale);
                for (var c = 0; c < 3; c++)
                {
                    var b = image.Pixels[((y / scale) * image.Width + x / scale) * 3 + c];
                    pixels[(y * w + x) * 3 + c] = (byte)Math.Clamp(Math.Round(0.75 * b + offset), 0, 255);
                }
            }
        }

        return new RgbImage(w, h, pixels);
    }
}
