using SkiaSharp;

namespace RenderFarm.Diffusion.Imaging;

/// <summary>Image operations the pipelines need, done by SkiaSharp.</summary>
public static class ImageOps
{
    /// <summary>Resamples to <paramref name="width"/>×<paramref name="height"/> (Mitchell cubic); returns the same instance when the size already matches.</summary>
    public static RgbImage Resize(RgbImage image, int width, int height)
    {
        if (image.Width == width && image.Height == height)
        {
            return image;
        }

        using var source = ToBitmap(image);
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var resized = source.Resize(info, new SKSamplingOptions(SKCubicResampler.Mitchell))
            ?? throw new InvalidOperationException($"SkiaSharp could not resize {image.Width}x{image.Height} to {width}x{height}.");
        var rgba = resized.GetPixelSpan();
        var pixels = new byte[width * height * 3];
        for (int i = 0, j = 0; j < pixels.Length; i += 4, j += 3)
        {
            pixels[j] = rgba[i];
            pixels[j + 1] = rgba[i + 1];
            pixels[j + 2] = rgba[i + 2];
        }

        return new RgbImage(width, height, pixels);
    }

    /// <summary>
    /// A Gaussian blur with σ = 1/16 of the longer side (32 px at 512²): strong enough that nothing in the picture can
    /// be made out, for images the safety checker flags under <c>blur</c>.
    /// </summary>
    public static RgbImage ObscuringBlur(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var sigma = Math.Max(image.Width, image.Height) / 16f;
        using var source = ToBitmap(image);
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var target = new SKBitmap(info);
        using (var canvas = new SKCanvas(target))
        using (var paint = new SKPaint { ImageFilter = SKImageFilter.CreateBlur(sigma, sigma, SKShaderTileMode.Clamp) })
        {
            canvas.DrawBitmap(source, 0, 0, paint);
        }

        var rgba = target.GetPixelSpan();
        var pixels = new byte[image.Width * image.Height * 3];
        for (int i = 0, j = 0; j < pixels.Length; i += 4, j += 3)
        {
            pixels[j] = rgba[i];
            pixels[j + 1] = rgba[i + 1];
            pixels[j + 2] = rgba[i + 2];
        }

        return new RgbImage(image.Width, image.Height, pixels);
    }

    private static SKBitmap ToBitmap(RgbImage image)
    {
        var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgba = bitmap.GetPixelSpan();
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = image.Pixels[i];
            rgba[j + 1] = image.Pixels[i + 1];
            rgba[j + 2] = image.Pixels[i + 2];
            rgba[j + 3] = 255;
        }

        return bitmap;
    }
}
