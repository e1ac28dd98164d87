using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Hires;

/// <summary>How visible the tile boundaries of an image are.</summary>
/// <param name="MedianGradient">The median line step that the worst boundary was compared with (its orientation's, on the grid).</param>
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

    /// <summary>
    /// Compares the step across each boundary with the median step of the image's lines of the same orientation
    /// (columns with columns, rows with rows) that lie on the same grid as tile edges.
    /// </summary>
    /// <param name="image">The stitched image.</param>
    /// <param name="columnBoundaries">Column coordinates of tile edges.</param>
    /// <param name="rowBoundaries">Row coordinates of tile edges.</param>
    /// <param name="gridPeriod">
    /// Only lines at multiples of this period form the median (1 = every line). A VAE decoder upsamples each latent
    /// cell by nearest-neighbour doublings, so an SD image's texture is periodic with the latent grid (lines at even
    /// coordinates step more than odd ones, cell edges more than cell interiors) even in an untiled render. Tile edges
    /// always lie on the 8-pixel grid, so comparing them with the other grid lines (the default) measures the seam and
    /// not the decoder; likewise columns and rows are kept apart because content is rarely isotropic.
    /// </param>
    public static SeamReport Measure(RgbImage image, IEnumerable<int> columnBoundaries, IEnumerable<int> rowBoundaries, int gridPeriod = 8)
    {
        ArgumentNullException.ThrowIfNull(columnBoundaries);
        ArgumentNullException.ThrowIfNull(rowBoundaries);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(gridPeriod);
        var columns = ColumnSteps(image);
        var rows = RowSteps(image);
        var columnMedian = GridMedian(columns, gridPeriod);
        var rowMedian = GridMedian(rows, gridPeriod);
        var worst = (Gradient: 0.0, Median: columnMedian, At: 0, Vertical: true);
        foreach (var x in columnBoundaries.Where(x => x > 0 && x < image.Width))
        {
            if (Excess(columns[x - 1], columnMedian) > Excess(worst.Gradient, worst.Median))
            {
                worst = (columns[x - 1], columnMedian, x, true);
            }
        }

        foreach (var y in rowBoundaries.Where(y => y > 0 && y < image.Height))
        {
            if (Excess(rows[y - 1], rowMedian) > Excess(worst.Gradient, worst.Median))
            {
                worst = (rows[y - 1], rowMedian, y, false);
            }
        }

        return new SeamReport(worst.Median, worst.Gradient, worst.At, worst.Vertical);

        static double Excess(double gradient, double median) => median == 0 ? (gradient == 0 ? 0 : double.PositiveInfinity) : gradient / median;
    }

    /// <summary>Median of the steps across lines at multiples of <paramref name="period"/> (step index i is the line at i + 1).</summary>
    private static double GridMedian(double[] steps, int period)
    {
        var onGrid = steps.Where((_, i) => (i + 1) % period == 0).Order().ToArray();
        if (onGrid.Length == 0)
        {
            onGrid = [.. steps.Order()];
        }

        return onGrid.Length == 0 ? 0
            : onGrid.Length % 2 == 1 ? onGrid[onGrid.Length / 2]
            : (onGrid[onGrid.Length / 2 - 1] + onGrid[onGrid.Length / 2]) / 2;
    }

    /// <summary>Measures at every tile edge of <paramref name="layout"/> (tile edges lie on the 8-pixel latent grid).</summary>
    public static SeamReport Measure(RgbImage image, HiresLayout layout, int gridPeriod = 8)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return Measure(image, layout.VerticalBoundaries(), layout.HorizontalBoundaries(), gridPeriod);
    }
}
