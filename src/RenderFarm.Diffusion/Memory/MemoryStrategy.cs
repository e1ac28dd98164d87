namespace RenderFarm.Diffusion.Memory;

/// <summary>
/// The memory strategies the engine implements. They compose: a render is <see cref="Resident"/> or
/// <see cref="Sequential"/>, plus any of the others. Ordered here as the planner tries them (cheapest first).
/// </summary>
[Flags]
public enum MemoryStrategies
{
    /// <summary>Every session loaded and kept between phases and renders: fastest, largest.</summary>
    Resident = 0,
    /// <summary>CFG's halves (or the batch's images) in separate UNet calls of <see cref="MemoryStrategy.UnetRowsPerCall"/> rows.</summary>
    BatchSplit = 1,
    /// <summary>VAE sessions on the CPU provider even when the UNet runs on CUDA: the VAE leaves device memory.</summary>
    VaeCpu = 2,
    /// <summary>Text encoder, UNet and VAE each loaded only while they run and released after (basujindal's optimizedSD).</summary>
    Sequential = 4,
    /// <summary>VAE decode/encode in overlapping latent tiles blended with smooth weights.</summary>
    TiledVae = 8,
    /// <summary>MultiDiffusion: every step the UNet runs on overlapping latent windows whose predictions are blended.</summary>
    LatentTiling = 16,
}

/// <summary>Square tiles or windows in latent pixels (1 latent pixel = 8 image pixels) and how much neighbours overlap.</summary>
public readonly record struct TileSize(int Size, int Overlap)
{
    /// <summary>Start offsets along an axis of <paramref name="length"/>: stride Size − Overlap, the last tile flush with the end, so every tile has the same shape (one ONNX Runtime memory plan).</summary>
    public int[] Starts(int length)
    {
        if (Size >= length)
        {
            return [0];
        }

        var stride = Math.Max(1, Size - Overlap);
        var starts = new List<int>();
        for (var s = 0; s + Size < length; s += stride)
        {
            starts.Add(s);
        }

        starts.Add(length - Size);
        return [.. starts];
    }

    /// <summary>Tiles needed to cover <paramref name="height"/>×<paramref name="width"/>.</summary>
    public int Count(int height, int width) => Starts(height).Length * Starts(width).Length;

    /// <summary>Throws unless the tile is at least 2 latent pixels and the overlap is in [0, Size).</summary>
    public void Validate(string name)
    {
        if (Size < 2 || Overlap < 0 || Overlap >= Size)
        {
            throw new ArgumentOutOfRangeException(name, this, $"{name}: size must be ≥ 2 and overlap in [0, size) (got {Size}/{Overlap}).");
        }
    }

    public override string ToString() => $"{Size}/{Overlap}";
}

/// <summary>
/// How one render uses memory: the strategy set and its settings. <see cref="Resident"/> is the engine's default
/// (the behaviour before memory planning existed). The planner (<see cref="MemoryPlanner"/>) chooses one for a budget;
/// a caller may also set one directly on <see cref="Pipelines.GenerationRequest.Memory"/>.
/// </summary>
public sealed record MemoryStrategy
{
    /// <summary>Default VAE tile: 32 latent pixels (256 image pixels) overlapping by 8 (64 pixels).</summary>
    public static TileSize DefaultVaeTile { get; } = new(32, 8);

    /// <summary>Default UNet window: 64 latent pixels (SD's native 512²) overlapping by 16, as MultiDiffusion's stride-8-of-64 is costlier than it needs to be.</summary>
    public static TileSize DefaultLatentWindow { get; } = new(64, 16);

    public MemoryStrategies Strategies { get; init; }

    /// <summary>Rows (CFG halves × images) per UNet call under <see cref="MemoryStrategies.BatchSplit"/>; ignored otherwise.</summary>
    public int UnetRowsPerCall { get; init; } = 1;

    /// <summary>Tile of <see cref="MemoryStrategies.TiledVae"/>, in latent pixels.</summary>
    public TileSize VaeTile { get; init; } = DefaultVaeTile;

    /// <summary>Window of <see cref="MemoryStrategies.LatentTiling"/>, in latent pixels.</summary>
    public TileSize LatentWindow { get; init; } = DefaultLatentWindow;

    public static MemoryStrategy Resident { get; } = new();

    public bool Has(MemoryStrategies strategy) => (Strategies & strategy) == strategy;

    /// <summary>The strategy names, residency first: <c>["resident"]</c>, <c>["sequential","tiled-vae","latent-tiling"]</c>, …</summary>
    public IReadOnlyList<string> Names => MemoryStrategyNames.Format(Strategies);

    /// <summary>Rows in one UNet call for a render with <paramref name="modelRows"/> rows in total.</summary>
    public int RowsPerCall(int modelRows) => Has(MemoryStrategies.BatchSplit) ? Math.Clamp(UnetRowsPerCall, 1, modelRows) : modelRows;

    /// <summary>Names and settings, e.g. <c>sequential+tiled-vae(32/8)+latent-tiling(48/12)</c>.</summary>
    public override string ToString() => string.Join("+", Strategies == MemoryStrategies.Resident
        ? [MemoryStrategyNames.Resident]
        : Names.Select(n => n switch
        {
            MemoryStrategyNames.BatchSplitName => $"{n}({UnetRowsPerCall} row/call)",
            MemoryStrategyNames.TiledVaeName => $"{n}({VaeTile})",
            MemoryStrategyNames.LatentTilingName => $"{n}({LatentWindow})",
            _ => n,
        }));

    /// <summary>Throws when a setting is out of range.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(UnetRowsPerCall, 1);
        VaeTile.Validate(nameof(VaeTile));
        LatentWindow.Validate(nameof(LatentWindow));
    }
}

/// <summary>The wire names of strategies (CLI, JSON, heartbeats): one list, so no name is spelled twice.</summary>
public static class MemoryStrategyNames
{
    public const string Resident = "resident";
    public const string SequentialName = "sequential";
    public const string BatchSplitName = "batch-split";
    public const string VaeCpuName = "vae-cpu";
    public const string TiledVaeName = "tiled-vae";
    public const string LatentTilingName = "latent-tiling";

    private static readonly (MemoryStrategies Flag, string Name)[] Modifiers =
    [
        (MemoryStrategies.BatchSplit, BatchSplitName),
        (MemoryStrategies.VaeCpu, VaeCpuName),
        (MemoryStrategies.TiledVae, TiledVaeName),
        (MemoryStrategies.LatentTiling, LatentTilingName),
    ];

    /// <summary>Residency first ("resident" or "sequential"), then the modifiers in planner order.</summary>
    public static IReadOnlyList<string> Format(MemoryStrategies strategies)
    {
        var names = new List<string> { (strategies & MemoryStrategies.Sequential) != 0 ? SequentialName : Resident };
        names.AddRange(Modifiers.Where(m => (strategies & m.Flag) != 0).Select(m => m.Name));
        return names;
    }

    /// <summary>Parses names (any order, case-insensitive); throws <see cref="FormatException"/> naming the valid ones.</summary>
    public static MemoryStrategies Parse(IEnumerable<string> names)
    {
        var result = MemoryStrategies.Resident;
        foreach (var raw in names)
        {
            var name = raw.Trim().ToLowerInvariant();
            if (name == Resident)
            {
                continue;
            }

            if (name == SequentialName)
            {
                result |= MemoryStrategies.Sequential;
                continue;
            }

            var match = Modifiers.FirstOrDefault(m => m.Name == name);
            if (match.Name is null)
            {
                throw new FormatException($"Unknown memory strategy '{raw}'; valid: {string.Join(", ", All)}.");
            }

            result |= match.Flag;
        }

        return result;
    }

    /// <summary>Every name, in planner order.</summary>
    public static IReadOnlyList<string> All { get; } = [Resident, BatchSplitName, VaeCpuName, SequentialName, TiledVaeName, LatentTilingName];
}
