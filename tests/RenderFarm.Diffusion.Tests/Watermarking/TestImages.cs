using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Tests.Watermarking;

/// <summary>Generated images for the watermark tests: noise (every block has a clear strongest coefficient) and smooth
/// gradients (a block's coefficients are alike, the hard case for the method).</summary>
internal static class TestImages
{
    public static RgbImage Noise(int width, int height, int seed)
    {
        var pixels = new byte[width * height * 3];
        new Random(seed).NextBytes(pixels);
        return new RgbImage(width, height, pixels);
    }

    public static RgbImage Smooth(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var i = 3 * (y * width + x);
                pixels[i] = (byte)Math.Clamp(128 + 60 * Math.Sin(x / 37.0) + 30 * Math.Cos(y / 23.0), 0, 255);
                pixels[i + 1] = (byte)Math.Clamp(90 + 0.4 * x + 20 * Math.Sin((x + y) / 29.0), 0, 255);
                pixels[i + 2] = (byte)Math.Clamp(200 - 0.5 * y + 25 * Math.Cos(x / 19.0), 0, 255);
            }
        }

        return new RgbImage(width, height, pixels);
    }

    public static RgbImage Flat(int width, int height, byte grey)
    {
        var pixels = new byte[width * height * 3];
        Array.Fill(pixels, grey);
        return new RgbImage(width, height, pixels);
    }
}
