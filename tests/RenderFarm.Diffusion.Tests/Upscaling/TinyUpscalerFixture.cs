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

    /// <summary>A folder for the tests' own files, deleted with the fixture.</summary>
    public string Scratch => _root;

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

/// <summary>The tiny upscaler's closed form (<see cref="TinyUpscaler.Reference"/>) on images.</summary>
public static class TinyUpscalerReference
{
    public static RgbImage Upscale(RgbImage image, int scale)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new RgbImage(image.Width * scale, image.Height * scale, TinyUpscaler.Reference(image.Pixels, image.Width, image.Height, scale));
    }
}
