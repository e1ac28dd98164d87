using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Hires;

/// <summary>How visible the tile boundaries of an image are.</summary>
/// <param name="MedianGradient">Median over all pixel lines (columns and rows) of the line's mean absolute step across it.</param>
/// <param name="WorstBoundaryGradient">The largest mean step across a tile boundary line.</param>
/// <param name="WorstBoundary">That boundary's pixel coordinate (the line between pixels <c>b − 1</c> and <c>b</c>).</param>
/// <param name="WorstIsVertical">True when the worst boundary is a column boundary.</param>
public sealed record SeamReport(double MedianGradient, double WorstBoundaryGradient, int WorstBoundary, bool WorstIsVertical)
{
    /// <summary>Worst boundary over the median line: about 1 when seams are invisible; the farm's acceptance bound is 1.2.</summary>
    public double Ratio => MedianGradient == 0 ? (WorstBoundaryGradient == 0 ? 0 : double.PositiveInfinity) : WorstBoundaryGradient / MedianGradient;
}

/// <summary>
/// The seam test of hires images: for every line between two pixel columns (and two pixel rows), the mean absolute
/// difference across it over all pixels and channels. A seam is a boundary line whose step stands out from the image's
/// typical line, so the metric compares each tile boundary with the median line of the same image.
/// </summary>
public static class SeamMetrics
{
    /// <summary>Mean |I(x, y) − I(x − 1, y)| over y and channels, for x = 1 … width − 1 (index x − 1).</summary>
    public static double[] ColumnSteps(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var steps = new double[image.Width - 1];
        var p = image.Pixels;
        for (var y = 0; y < image.Height; y++)
        {
            var row = y * image.Width * 3;
            for (var x = 1; x < image.Width; x++)
            {
                var a = row + x * 3;
                steps[x - 1] += Math.Abs(p[a] - p[a - 3]) + Math.Abs(p[a + 1] - p[a - 2]) + Math.Abs(p[a + 2] - p[a - 1]);
            }
        }

        return [.. steps.Select(s => s / (image.Height * 3.0))];
    }

    /// <summary>Mean |I(x, y) − I(x, y − 1)| over x and channels, for y = 1 … height − 1 (index y − 1).</summary>
    public static double[] RowSteps(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var steps = new double[image.Height - 1];
        var p = image.Pixels;
        var stride = image.Width * 3;
        for (var y = 1; y < image.Height; y++)
        {
            double sum = 0;
            for (var i = 0; i < stride; i++)
            {
                sum += Math.Abs(p[y * stride + i] - p[(y - 1) * stride + i]);
            }

            steps[y - 1] = sum / stride;
        }

        return steps;
    }

    /// <summary>Compares the steps across the given boundaries with the image's median line step.</summary>
    public static SeamReport Measure(RgbImage image, IEnumerable<int> columnBoundaries, IEnumerable<int> rowBoundaries)
    {
        ArgumentNullException.ThrowIfNull(columnBoundaries);
        ArgumentNullException.ThrowIfNull(rowBoundaries);
        var columns = ColumnSteps(image);
        var rows = RowSteps(image);
        var all = columns.Concat(rows).Order().ToArray();
        var median = all.Length == 0 ? 0 : all.Length % 2 == 1 ? all[all.Length / 2] : (all[all.Length / 2 - 1] + all[all.Length / 2]) / 2;
        var worst = (Gradient: 0.0, At: 0, Vertical: true);
        foreach (var x in columnBoundaries.Where(x => x > 0 && x < image.Width))
        {
            if (columns[x - 1] > worst.Gradient)
            {
                worst = (columns[x - 1], x, true);
            }
        }

        foreach (var y in rowBoundaries.Where(y => y > 0 && y < image.Height))
        {
            if (rows[y - 1] > worst.Gradient)
            {
                worst = (rows[y - 1], y, false);
            }
        }

        return new SeamReport(median, worst.Gradient, worst.At, worst.Vertical);
    }

    /// <summary>Measures at every tile edge of <paramref name="layout"/>.</summary>
    public static SeamReport Measure(RgbImage image, HiresLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return Measure(image, layout.VerticalBoundaries(), layout.HorizontalBoundaries());
    }
}
