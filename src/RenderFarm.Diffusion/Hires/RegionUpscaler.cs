using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Hires;

/// <summary>
/// Mitchell–Netravali (B = C = 1/3) resampling of a base image to a target size, computed for one region of the target
/// only: a tile reads just the base pixels under its kernel footprint, so no process ever builds the full-size upscale.
/// </summary>
/// <remarks>
/// Hand-written rather than Skia: each output pixel is a function of its absolute target coordinate alone (fixed tap
/// order, no SIMD-width-dependent paths), so a region is bit-identical to the same pixels of a whole-image upscale and
/// every worker computes the same tile input whatever its Skia build or CPU. Edges clamp, as Skia's resize does.
/// </remarks>
public static class RegionUpscaler
{
    private const double B = 1.0 / 3.0;
    private const double C = 1.0 / 3.0;

    /// <summary>Mitchell's kernel is zero beyond two source pixels (when enlarging).</summary>
    private const double Support = 2.0;

    /// <summary>
    /// The pixels of <paramref name="region"/> of <paramref name="source"/> resampled to
    /// <paramref name="targetWidth"/>×<paramref name="targetHeight"/>.
    /// </summary>
    public static RgbImage Upscale(RgbImage source, int targetWidth, int targetHeight, PixelRect region)
    {
        ArgumentNullException.ThrowIfNull(source);
        return Upscale(source, 0, 0, source.Width, source.Height, targetWidth, targetHeight, region);
    }

    /// <summary>
    /// The same, reading the source through <paramref name="window"/>: the part of a
    /// <paramref name="sourceWidth"/>×<paramref name="sourceHeight"/> source that starts at
    /// (<paramref name="windowX"/>, <paramref name="windowY"/>) and covers every source pixel the region's kernels read
    /// (<see cref="SourceFootprint"/>). The result is bit-identical to reading the whole source.
    /// </summary>
    public static RgbImage Upscale(RgbImage window, int windowX, int windowY, int sourceWidth, int sourceHeight, int targetWidth, int targetHeight, PixelRect region)
    {
        ArgumentNullException.ThrowIfNull(window);
        var source = window;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(targetWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(targetHeight);
        if (region.X < 0 || region.Y < 0 || region.Width <= 0 || region.Height <= 0 || region.Right > targetWidth || region.Bottom > targetHeight)
        {
            throw new ArgumentOutOfRangeException(nameof(region), region, $"The region must lie inside {targetWidth}x{targetHeight}.");
        }

        var columns = Taps(sourceWidth, targetWidth, region.X, region.Width);
        var rows = Taps(sourceHeight, targetHeight, region.Y, region.Height);

        // Only the source columns some output column reads: the region's footprint in the base plus the kernel margin.
        var firstColumn = columns.Min(t => t.First);
        var lastColumn = columns.Max(t => t.First + t.Weights.Length - 1);
        var firstRow = rows.Min(t => t.First);
        var lastRow = rows.Max(t => t.First + t.Weights.Length - 1);
        if (Math.Max(firstColumn, 0) < windowX || Math.Min(lastColumn, sourceWidth - 1) >= windowX + window.Width
            || Math.Max(firstRow, 0) < windowY || Math.Min(lastRow, sourceHeight - 1) >= windowY + window.Height)
        {
            throw new ArgumentException($"The source window {window.Width}x{window.Height} at ({windowX}, {windowY}) does not cover the region's footprint.", nameof(window));
        }
        var footprint = lastColumn - firstColumn + 1;
        var vertical = new float[footprint * 3];
        var pixels = new byte[region.Width * region.Height * 3];
        var src = source.Pixels;
        var stride = source.Width * 3;
        for (var y = 0; y < region.Height; y++)
        {
            // Vertical pass into one row of floats, then the horizontal pass from it; both sum taps in a fixed order.
            var rowTaps = rows[y];
            for (var sx = firstColumn; sx <= lastColumn; sx++)
            {
                var column = (Math.Clamp(sx, 0, sourceWidth - 1) - windowX) * 3;
                float r = 0, g = 0, b = 0;
                for (var k = 0; k < rowTaps.Weights.Length; k++)
                {
                    var offset = (Math.Clamp(rowTaps.First + k, 0, sourceHeight - 1) - windowY) * stride + column;
                    var w = rowTaps.Weights[k];
                    r += w * src[offset];
                    g += w * src[offset + 1];
                    b += w * src[offset + 2];
                }

                var v = (sx - firstColumn) * 3;
                vertical[v] = r;
                vertical[v + 1] = g;
                vertical[v + 2] = b;
            }

            var outRow = y * region.Width * 3;
            for (var x = 0; x < region.Width; x++)
            {
                var columnTaps = columns[x];
                float r = 0, g = 0, b = 0;
                for (var k = 0; k < columnTaps.Weights.Length; k++)
                {
                    var v = (columnTaps.First + k - firstColumn) * 3;
                    var w = columnTaps.Weights[k];
                    r += w * vertical[v];
                    g += w * vertical[v + 1];
                    b += w * vertical[v + 2];
                }

                pixels[outRow + x * 3] = ToByte(r);
                pixels[outRow + x * 3 + 1] = ToByte(g);
                pixels[outRow + x * 3 + 2] = ToByte(b);
            }
        }

        return new RgbImage(region.Width, region.Height, pixels);
    }

    /// <summary>
    /// The source pixels (clamped to the source) that the output pixels of <paramref name="region"/> read, when a
    /// <paramref name="sourceWidth"/>×<paramref name="sourceHeight"/> source is resampled to
    /// <paramref name="targetWidth"/>×<paramref name="targetHeight"/>.
    /// </summary>
    public static PixelRect SourceFootprint(int sourceWidth, int sourceHeight, int targetWidth, int targetHeight, PixelRect region)
    {
        var columns = Taps(sourceWidth, targetWidth, region.X, region.Width);
        var rows = Taps(sourceHeight, targetHeight, region.Y, region.Height);
        var x0 = Math.Max(0, columns.Min(t => t.First));
        var x1 = Math.Min(sourceWidth, columns.Max(t => t.First + t.Weights.Length));
        var y0 = Math.Max(0, rows.Min(t => t.First));
        var y1 = Math.Min(sourceHeight, rows.Max(t => t.First + t.Weights.Length));
        return new PixelRect(x0, y0, x1 - x0, y1 - y0);
    }

    /// <summary>Upscales the whole image (the same arithmetic as every region of it).</summary>
    public static RgbImage Upscale(RgbImage source, int targetWidth, int targetHeight) =>
        Upscale(source, targetWidth, targetHeight, new PixelRect(0, 0, targetWidth, targetHeight));

    private static byte ToByte(float value) => (byte)Math.Clamp(MathF.Round(value, MidpointRounding.ToEven), 0f, 255f);

    private readonly record struct Tap(int First, float[] Weights);

    /// <summary>
    /// For each output pixel <c>start + i</c> of an axis scaled from <paramref name="sourceLength"/> to
    /// <paramref name="targetLength"/>: the first source pixel it reads (unclamped) and the normalised weights.
    /// </summary>
    private static Tap[] Taps(int sourceLength, int targetLength, int start, int count)
    {
        var scale = (double)sourceLength / targetLength;
        // Enlarging: the kernel spans ±2 source pixels. Shrinking: it is stretched to ±2 output pixels, or it would alias.
        var stretch = Math.Max(1.0, scale);
        var radius = Support * stretch;
        var taps = new Tap[count];
        for (var i = 0; i < count; i++)
        {
            var centre = (start + i + 0.5) * scale - 0.5;
            var first = (int)Math.Floor(centre - radius) + 1;
            var last = (int)Math.Ceiling(centre + radius) - 1;
            var weights = new double[last - first + 1];
            var sum = 0.0;
            for (var k = 0; k < weights.Length; k++)
            {
                weights[k] = Mitchell((first + k - centre) / stretch);
                sum += weights[k];
            }

            taps[i] = new Tap(first, [.. weights.Select(w => (float)(w / sum))]);
        }

        return taps;
    }

    private static double Mitchell(double x)
    {
        x = Math.Abs(x);
        if (x < 1)
        {
            return ((12 - 9 * B - 6 * C) * x * x * x + (-18 + 12 * B + 6 * C) * x * x + (6 - 2 * B)) / 6;
        }

        if (x < 2)
        {
            return ((-B - 6 * C) * x * x * x + (6 * B + 30 * C) * x * x + (-12 * B - 48 * C) * x + (8 * B + 24 * C)) / 6;
        }

        return 0;
    }
}
