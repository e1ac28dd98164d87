using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Diffusion.Tests.Hires;

/// <summary>Layouts from the domain's grid (as hosts build them) and an independent, whole-image reference stitch.</summary>
internal static class HiresTestKit
{
    public static HiresLayout Layout(int width, int height, int tile, int overlap, long jobSeed = 42, string prompt = "a lighthouse at dusk")
    {
        var grid = TileGrid.Create(width, height, tile, overlap);
        var tiles = grid.Tiles.Select(t => new HiresTile(
            t.Index,
            new PixelRect(t.X, t.Y, t.Width, t.Height),
            grid.ColumnWeightsArray(t.Column),
            grid.RowWeightsArray(t.Row),
            (ulong)TileDerivation.Seed(jobSeed, t.Index),
            TileDerivation.Prompt(prompt, t.Index))).ToArray();
        return new HiresLayout(width, height, tile, overlap, tiles);
    }

    /// <summary>
    /// The textbook blend, over the whole image at once: pixel = round(Σ_tiles pixel × (column weight × row weight)),
    /// summed in tile order. Shares no code with <see cref="TileStitcher"/>.
    /// </summary>
    public static RgbImage ReferenceStitch(HiresLayout layout, IReadOnlyList<RgbImage> tiles)
    {
        var sums = new float[layout.Width * layout.Height * 3];
        foreach (var tile in layout.Tiles)
        {
            var b = tile.Bounds;
            var image = tiles[tile.Index];
            for (var y = 0; y < b.Height; y++)
            {
                for (var x = 0; x < b.Width; x++)
                {
                    var w = tile.ColumnWeights[x] * tile.RowWeights[y];
                    for (var c = 0; c < 3; c++)
                    {
                        sums[((b.Y + y) * layout.Width + b.X + x) * 3 + c] += image.Pixels[(y * b.Width + x) * 3 + c] * w;
                    }
                }
            }
        }

        return new RgbImage(layout.Width, layout.Height, [.. sums.Select(s => (byte)Math.Clamp(MathF.Round(s), 0f, 255f))]);
    }

    public static RgbImage Crop(RgbImage image, PixelRect r)
    {
        var pixels = new byte[r.Width * r.Height * 3];
        for (var y = 0; y < r.Height; y++)
        {
            image.Pixels.AsSpan(((r.Y + y) * image.Width + r.X) * 3, r.Width * 3).CopyTo(pixels.AsSpan(y * r.Width * 3));
        }

        return new RgbImage(r.Width, r.Height, pixels);
    }

    /// <summary>A smooth but nowhere-constant picture, so a misplaced pixel shows.</summary>
    public static RgbImage Picture(int width, int height, int seed = 1)
    {
        var random = new Random(seed);
        var (a, b, c) = (random.NextDouble() * 0.2, random.NextDouble() * 0.2, random.NextDouble() * 0.2);
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var i = (y * width + x) * 3;
                pixels[i] = (byte)(127 + 120 * Math.Sin(x * a + y * 0.05));
                pixels[i + 1] = (byte)(127 + 120 * Math.Cos(y * b - x * 0.03));
                pixels[i + 2] = (byte)((x * 7 + y * 3 + (int)(40 * Math.Sin((x + y) * c))) & 0xFF);
            }
        }

        return new RgbImage(width, height, pixels);
    }

    public static RgbImage Noise(int width, int height, int seed)
    {
        var pixels = new byte[width * height * 3];
        new Random(seed).NextBytes(pixels);
        return new RgbImage(width, height, pixels);
    }

    /// <summary>Grey-ish noise in 100…140: statistically the same everywhere.</summary>
    public static RgbImage Texture(int width, int height, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[width * height * 3];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(100 + random.Next(41));
        }

        return new RgbImage(width, height, pixels);
    }

    public static int MaxDifference(RgbImage a, RgbImage b)
    {
        (a.Width, a.Height).ShouldBe((b.Width, b.Height));
        var max = 0;
        for (var i = 0; i < a.Pixels.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a.Pixels[i] - b.Pixels[i]));
        }

        return max;
    }

    /// <summary>A tile source over images already in memory, recording the order tiles were asked for.</summary>
    public sealed class ListTileSource(IReadOnlyList<RgbImage> tiles) : ITileSource
    {
        public List<int> Requests { get; } = [];

        public ValueTask<RgbImage> GetTileAsync(int tileIndex, CancellationToken cancellationToken)
        {
            Requests.Add(tileIndex);
            return ValueTask.FromResult(tiles[tileIndex]);
        }
    }
}
