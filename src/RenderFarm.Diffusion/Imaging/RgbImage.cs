namespace RenderFarm.Diffusion.Imaging;

/// <summary>An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.</summary>
public sealed class RgbImage
{
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (pixels.Length != width * height * 3)
        {
            throw new ArgumentException($"Expected {width * height * 3} bytes for {width}x{height} RGB, got {pixels.Length}.", nameof(pixels));
        }

        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    /// <summary>
    /// Converts planar CHW model output in [-1, 1] to 8-bit RGB exactly as diffusers does:
    /// clip(x / 2 + 0.5, 0, 1), then (x * 255).round().
    /// </summary>
    public static RgbImage FromModelPlanes(ReadOnlySpan<float> chw, int width, int height)
    {
        var plane = width * height;
        if (chw.Length < plane * 3)
        {
            throw new ArgumentException($"Expected at least {plane * 3} values for {width}x{height}x3.", nameof(chw));
        }

        var pixels = new byte[plane * 3];
        for (var c = 0; c < 3; c++)
        {
            var source = chw.Slice(c * plane, plane);
            for (var i = 0; i < plane; i++)
            {
                var v = Math.Clamp(source[i] / 2f + 0.5f, 0f, 1f);
                pixels[i * 3 + c] = (byte)MathF.Round(v * 255f, MidpointRounding.ToEven);
            }
        }

        return new RgbImage(width, height, pixels);
    }

    /// <summary>Planar CHW values in [-1, 1], the VAE encoder's input range.</summary>
    public float[] ToModelPlanes()
    {
        var plane = Width * Height;
        var chw = new float[plane * 3];
        for (var i = 0; i < plane; i++)
        {
            for (var c = 0; c < 3; c++)
            {
                chw[c * plane + i] = Pixels[i * 3 + c] / 255f * 2f - 1f;
            }
        }

        return chw;
    }
}
