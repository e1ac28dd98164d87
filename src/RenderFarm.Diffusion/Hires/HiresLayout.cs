namespace RenderFarm.Diffusion.Hires;

/// <summary>A rectangle in pixels of the final image.</summary>
public readonly record struct PixelRect(int X, int Y, int Width, int Height)
{
    public int Right => X + Width;
    public int Bottom => Y + Height;
}

/// <summary>
/// One tile as the engine sees it: where it goes, how it blends, and what it renders with. The farm's domain computes
/// these (tile grid, weights, derived seed and prompt); the engine only uses them, so it needs no farm types.
/// </summary>
/// <param name="Index">The tile's identity, the order the stitcher asks for it in.</param>
/// <param name="Bounds">Where the tile lies in the final image.</param>
/// <param name="ColumnWeights">Blend weight per pixel column of the tile (length <c>Bounds.Width</c>).</param>
/// <param name="RowWeights">Blend weight per pixel row of the tile (length <c>Bounds.Height</c>).</param>
/// <param name="Seed">Seed of the tile's img2img noise.</param>
/// <param name="Prompt">Prompt of the tile.</param>
public sealed record HiresTile(int Index, PixelRect Bounds, float[] ColumnWeights, float[] RowWeights, ulong Seed, string Prompt);

/// <summary>
/// The tiles of one hires image and how they blend: a tile's weight at a pixel is its column weight times its row weight,
/// and the layout's author guarantees that the weights of all tiles sum to 1 at every pixel (the domain's
/// <c>TileGrid</c> proves it in its tests).
/// </summary>
public sealed class HiresLayout
{
    /// <param name="width">Final image width.</param>
    /// <param name="height">Final image height.</param>
    /// <param name="tileSize">Requested tile side (recorded in the image's parameters).</param>
    /// <param name="overlap">Requested least overlap (recorded in the image's parameters).</param>
    /// <param name="tiles">Tiles ordered by index, index i at position i, ordered top to bottom by their top edge.</param>
    public HiresLayout(int width, int height, int tileSize, int overlap, IReadOnlyList<HiresTile> tiles)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentNullException.ThrowIfNull(tiles);
        if (tiles.Count == 0)
        {
            throw new ArgumentException("A layout needs at least one tile.", nameof(tiles));
        }

        for (var i = 0; i < tiles.Count; i++)
        {
            var t = tiles[i];
            var b = t.Bounds;
            if (t.Index != i)
            {
                throw new ArgumentException($"Tile at position {i} has index {t.Index}; tiles must be listed in index order.", nameof(tiles));
            }

            if (b.X < 0 || b.Y < 0 || b.Width <= 0 || b.Height <= 0 || b.Right > width || b.Bottom > height
                || b.X % 8 != 0 || b.Y % 8 != 0 || b.Width % 8 != 0 || b.Height % 8 != 0)
            {
                throw new ArgumentException($"Tile {i} ({b}) must lie inside {width}x{height} on the 8-pixel latent grid.", nameof(tiles));
            }

            if (t.ColumnWeights.Length != b.Width || t.RowWeights.Length != b.Height)
            {
                throw new ArgumentException($"Tile {i} needs {b.Width} column and {b.Height} row weights.", nameof(tiles));
            }

            if (i > 0 && b.Y < tiles[i - 1].Bounds.Y)
            {
                // The stitcher walks rows top to bottom and asks for tiles in index order as they begin.
                throw new ArgumentException($"Tile {i} starts above tile {i - 1}; order tiles by their top edge.", nameof(tiles));
            }
        }

        Width = width;
        Height = height;
        TileSize = tileSize;
        Overlap = overlap;
        Tiles = tiles;
    }

    public int Width { get; }
    public int Height { get; }
    public int TileSize { get; }
    public int Overlap { get; }
    public IReadOnlyList<HiresTile> Tiles { get; }

    /// <summary>Pixel rows where a tile begins or ends inside the image: where a seam would show.</summary>
    public IReadOnlyList<int> HorizontalBoundaries() =>
        [.. Tiles.SelectMany(t => new[] { t.Bounds.Y, t.Bounds.Bottom }).Where(y => y > 0 && y < Height).Distinct().Order()];

    /// <summary>Pixel columns where a tile begins or ends inside the image.</summary>
    public IReadOnlyList<int> VerticalBoundaries() =>
        [.. Tiles.SelectMany(t => new[] { t.Bounds.X, t.Bounds.Right }).Where(x => x > 0 && x < Width).Distinct().Order()];
}
