using System.Globalization;

namespace RenderFarm.Diffusion.Memory;

/// <summary>
/// An upscaler's memory and time, stored in its folder's <c>renderfarm-upscaler.json</c> under <c>memory</c>: the
/// same <see cref="ComponentProfile"/> as a Stable Diffusion component, with tokens = input pixels of one tile (one
/// row per call). Sizes are bytes of <see cref="Device"/>: process memory for <c>cpu</c>, GPU memory for <c>cuda</c>.
/// </summary>
public sealed record UpscalerMemoryProfile
{
    public required string Kind { get; init; }
    public required string Device { get; init; }
    public string Method { get; init; } = "";
    /// <summary>Memory of the process before the session loads (as <see cref="MemoryProfile.BaseBytes"/>).</summary>
    public required long BaseBytes { get; init; }
    public required ComponentProfile Model { get; init; }

    public bool IsCpu => Device == MemoryProfile.CpuDevice;
}

/// <summary>What an upscale asks of memory: the input image's size and the model's scale.</summary>
public sealed record UpscaleShape(int Width, int Height, int Scale);

/// <summary>One tile size the planner tried.</summary>
public sealed record UpscaleCandidate(TileSize Tile, long PredictedPeakBytes, double PredictedSeconds, bool Fits);

/// <summary>The planner's answer for an upscale: the tile (null when none fits) and everything it tried.</summary>
public sealed record UpscalePlan(bool Fits, TileSize? Tile, long PredictedPeakBytes, double PredictedSeconds, string Reason, IReadOnlyList<UpscaleCandidate> Considered);

/// <summary>
/// Predicts an upscale's peak memory per tile size and picks the largest tile (fewest seams, least overlap recomputed)
/// that fits a budget, as <see cref="MemoryPlanner"/> does for renders. Tiles are squares in input pixels, tried
/// largest first; the whole image as one tile comes first when it is no larger than the largest tile.
/// </summary>
public sealed class UpscalePlanner(UpscalerMemoryProfile profile)
{
    /// <summary>Tile sides in input pixels, largest first.</summary>
    public static IReadOnlyList<int> TileSides { get; } = [512, 384, 256, 192, 128, 96, 64, 48, 32, 16];

    /// <summary>The overlap of a tile: an eighth of its side, at least 4 input pixels (Real-ESRGAN pads tiles by 10).</summary>
    public static TileSize Tile(int side) => new(side, Math.Max(4, side / 8));

    public UpscalerMemoryProfile Profile => profile;

    /// <summary>Peak bytes and seconds of upscaling <paramref name="shape"/> in tiles of <paramref name="tile"/>.</summary>
    public (long PeakBytes, double Seconds) Predict(UpscaleShape shape, TileSize tile)
    {
        ArgumentNullException.ThrowIfNull(shape);
        double th = Math.Min(tile.Size, shape.Height);
        double tw = Math.Min(tile.Size, shape.Width);
        var tokens = th * tw;
        var count = tile.Count(shape.Height, shape.Width);
        var host = profile.IsCpu ? HostBytes(shape, tile) : 0;
        var peak = profile.BaseBytes + profile.Model.WeightBytes + profile.Model.ActivationBytes.Evaluate(1, tokens) + host;
        var seconds = count * profile.Model.Seconds.Evaluate(1, tokens);
        return ((long)peak, seconds);
    }

    /// <summary>The largest tile whose predicted peak fits <paramref name="budgetBytes"/>.</summary>
    public UpscalePlan Plan(UpscaleShape shape, long budgetBytes)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        var considered = new List<UpscaleCandidate>();
        foreach (var tile in Candidates(shape))
        {
            var (peak, seconds) = Predict(shape, tile);
            var fits = peak <= budgetBytes;
            considered.Add(new UpscaleCandidate(tile, peak, seconds, fits));
            if (fits)
            {
                return new UpscalePlan(true, tile, peak, seconds, string.Create(CultureInfo.InvariantCulture,
                    $"tile {tile.Size} (overlap {tile.Overlap}) fits: {ByteSize.Format(peak)} of {ByteSize.Format(budgetBytes)}"), considered);
            }
        }

        var smallest = considered[^1];
        return new UpscalePlan(false, null, smallest.PredictedPeakBytes, smallest.PredictedSeconds, string.Create(CultureInfo.InvariantCulture,
            $"nothing fits: the smallest tile ({smallest.Tile.Size}) needs {ByteSize.Format(smallest.PredictedPeakBytes)} > budget {ByteSize.Format(budgetBytes)}"), considered);
    }

    /// <summary>The tiles tried for <paramref name="shape"/>: the whole image first when it fits the largest side.</summary>
    public static IEnumerable<TileSize> Candidates(UpscaleShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var side = Math.Max(shape.Width, shape.Height);
        if (side <= TileSides[0])
        {
            yield return new TileSize(side, 0);
        }

        foreach (var s in TileSides.Where(s => s < side))
        {
            yield return Tile(s);
        }
    }

    /// <summary>
    /// The engine's own buffers (counted, not calibrated): the input image's bytes, the output's float planes, blend
    /// weight sum and bytes, and one tile's float input (the tile's output is ONNX Runtime's, in the activations).
    /// </summary>
    public static long HostBytes(UpscaleShape shape, TileSize tile)
    {
        ArgumentNullException.ThrowIfNull(shape);
        double input = (double)shape.Width * shape.Height;
        double output = input * shape.Scale * shape.Scale;
        double tileIn = (double)Math.Min(tile.Size, shape.Height) * Math.Min(tile.Size, shape.Width);
        return (long)(3 * input + 12 * output + 4 * output + 3 * output + 12 * tileIn);
    }
}
