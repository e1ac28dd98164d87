using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Watermarking;

/// <summary>
/// An image as floating-point Y, U, V planes with OpenCV's <c>COLOR_BGR2YUV</c> / <c>COLOR_YUV2BGR</c> coefficients
/// (BT.601 luma; U = 0.492·(B − Y) + 128, V = 0.877·(R − Y) + 128), because the watermark is defined on OpenCV's U.
/// Kept in floating point until the end, so marking U moves no other channel by more than the final rounding.
/// </summary>
internal sealed class YuvPlanes
{
    private const double UFromBlue = 0.492;
    private const double VFromRed = 0.877;

    private YuvPlanes(int width, int height)
    {
        Width = width;
        Height = height;
        Y = new double[width * height];
        U = new double[width * height];
        V = new double[width * height];
    }

    public int Width { get; }
    public int Height { get; }
    public double[] Y { get; }
    public double[] U { get; }
    public double[] V { get; }

    public static YuvPlanes From(RgbImage image)
    {
        var planes = new YuvPlanes(image.Width, image.Height);
        var p = image.Pixels;
        for (var i = 0; i < planes.Y.Length; i++)
        {
            double r = p[3 * i], g = p[3 * i + 1], b = p[3 * i + 2];
            var y = 0.299 * r + 0.587 * g + 0.114 * b;
            planes.Y[i] = y;
            planes.U[i] = UFromBlue * (b - y) + 128;
            planes.V[i] = VFromRed * (r - y) + 128;
        }

        return planes;
    }

    /// <summary>
    /// U as OpenCV computes it for 8-bit input (Q14 fixed point: Y rounded to an integer first, then U), which is
    /// what the reference decoder reads; decoding from the same integers makes our votes theirs bit for bit.
    /// </summary>
    public static double[] OpenCvU(RgbImage image)
    {
        var u = new double[image.Width * image.Height];
        var p = image.Pixels;
        for (var i = 0; i < u.Length; i++)
        {
            int r = p[3 * i], g = p[3 * i + 1], b = p[3 * i + 2];
            var y = (r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14;
            u[i] = Math.Clamp(((b - y) * 8061 + (128 << 14) + (1 << 13)) >> 14, 0, 255);
        }

        return u;
    }

    public RgbImage ToRgb()
    {
        var pixels = new byte[Width * Height * 3];
        for (var i = 0; i < Y.Length; i++)
        {
            var y = Y[i];
            var u = (U[i] - 128) / UFromBlue;
            var v = (V[i] - 128) / VFromRed;
            var r = y + v;
            var b = y + u;
            var g = (y - 0.299 * r - 0.114 * b) / 0.587;
            pixels[3 * i] = ToByte(r);
            pixels[3 * i + 1] = ToByte(g);
            pixels[3 * i + 2] = ToByte(b);
        }

        return new RgbImage(Width, Height, pixels);
    }

    private static byte ToByte(double value) => (byte)Math.Clamp(Math.Round(value), 0, 255);
}
