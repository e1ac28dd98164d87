using RenderFarm.Contracts;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Domain.Tiling;
using RenderFarm.Storage;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// A hires job's items as the coordinator expands them (base, tiles, stitch; seeds and prompts from
/// <see cref="TileDerivation"/>), and the same job as the single-machine <see cref="HiresRequest"/>.
/// </summary>
internal sealed record HiresTestJob(int Width, int Height, int Tile, int Overlap, int BaseWidth, int BaseHeight, long Seed = 77, int Steps = 4, double Strength = 0.5)
{
    public const string Prompt = "a lighthouse at dusk";
    public const string NegativePrompt = "blurry";
    public const string Sampler = "euler_a";
    public const double Guidance = 7.5;

    public string Prefix { get; } = $"tests/hires/{Guid.NewGuid():N}/";

    public TileGrid Grid => TileGrid.Create(Width, Height, Tile, Overlap);

    public string BaseKey => Prefix + "base.png";

    public string FinalKey => Prefix + "final.png";

    public string TileKey(int index) => Prefix + $"tile-{index:D4}.png";

    public RenderItem Base => Item(0, Seed, Prompt, BaseWidth, BaseHeight, RenderModes.Txt2Img, null, BaseKey, Part(HiresRoles.Base, -1, null, null));

    public RenderItem TileItem(int index)
    {
        var t = Grid.Tiles[index];
        return Item(index + 1, TileDerivation.Seed(Seed, index), TileDerivation.Prompt(Prompt, index), t.Width, t.Height,
            RenderModes.HiresTile, Strength, TileKey(index), Part(HiresRoles.Tile, index, BaseKey, null));
    }

    public RenderItem Stitch => Item(Grid.Tiles.Count + 1, Seed, Prompt, Width, Height, RenderModes.HiresStitch, Strength, FinalKey,
        Part(HiresRoles.Stitch, -1, BaseKey, [.. Enumerable.Range(0, Grid.Tiles.Count).Select(TileKey)]));

    /// <summary>The layout exactly as <c>renderfarm render</c> builds it (HiresLayouts.FromGrid).</summary>
    public HiresLayout Layout()
    {
        var grid = Grid;
        return new(grid.Width, grid.Height, grid.TileSize, grid.Overlap, [.. grid.Tiles.Select(t => new HiresTile(
            t.Index,
            new PixelRect(t.X, t.Y, t.Width, t.Height),
            grid.ColumnWeightsArray(t.Column),
            grid.RowWeightsArray(t.Row),
            (ulong)TileDerivation.Seed(Seed, t.Index),
            TileDerivation.Prompt(Prompt, t.Index)))]);
    }

    public HiresRequest Request(RgbImage? baseImage = null) => new()
    {
        Layout = Layout(),
        Prompt = Prompt,
        Seed = (ulong)Seed,
        BaseWidth = BaseWidth,
        BaseHeight = BaseHeight,
        BaseImage = baseImage,
        Settings = new RefineSettings { Steps = Steps, GuidanceScale = Guidance, Sampler = Sampler, Strength = Strength, NegativePrompt = NegativePrompt },
    };

    private RenderItem Item(long index, long seed, string prompt, int width, int height, string mode, double? strength, string outputKey, HiresPart part) =>
        new(Guid.NewGuid(), 1, index, seed, prompt, NegativePrompt, width, height, Steps, Guidance, Sampler, TestItems.Model, mode, strength,
            InitImageKey: null, MaskKey: null, outputKey, part);

    private HiresPart Part(string role, int tileIndex, string? baseKey, IReadOnlyList<string>? tileKeys) =>
        new(role, Width, Height, Tile, Overlap, tileIndex, Grid.Tiles.Count, baseKey, tileKeys);
}

internal static class HiresImages
{
    /// <summary>A smooth, nowhere-constant picture that differs per <paramref name="seed"/>, so a misplaced tile shows.</summary>
    public static RgbImage Picture(int width, int height, int seed)
    {
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var i = (y * width + x) * 3;
                pixels[i] = (byte)(127 + 120 * Math.Sin((x + seed * 13) * 0.07 + y * 0.05));
                pixels[i + 1] = (byte)(127 + 120 * Math.Cos((y + seed * 7) * 0.04 - x * 0.03));
                pixels[i + 2] = (byte)((x * 7 + y * 3 + seed * 29) & 0xFF);
            }
        }

        return new RgbImage(width, height, pixels);
    }

    public static async Task PutAsync(IArtifactStore store, string key, byte[] png) =>
        await store.PutAsync(key, new MemoryStream(png, writable: false), "image/png", CancellationToken.None);

    public static async Task<byte[]> ReadAsync(IArtifactStore store, string key)
    {
        await using var stream = await store.OpenReadAsync(key, CancellationToken.None);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }
}
