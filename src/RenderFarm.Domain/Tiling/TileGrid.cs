namespace RenderFarm.Domain.Tiling;

/// <summary>
/// How a hires image of <see cref="Width"/>×<see cref="Height"/> is cut into overlapping tiles that workers refine
/// independently. Pure geometry: the same inputs give the same tiles on every machine, so a tile index is a stable name.
/// </summary>
/// <remarks>
/// Along each axis the fewest tiles that keep every overlap at least <see cref="Overlap"/> are spread evenly between
/// the two edges (starts on the 8-pixel latent grid), so the last tile ends exactly at the image edge instead of
/// being shrunk: every tile has the full tile size whenever the image is at least that large, and the surplus
/// is shared out as slightly wider overlaps rather than piled into one narrow edge tile.
/// </remarks>
public sealed class TileGrid
{
    /// <summary>Tile positions and sizes are whole latent cells (the VAE downsamples by 8).</summary>
    public const int Alignment = 8;

    private readonly float[][] _columnWeights;
    private readonly float[][] _rowWeights;

    private TileGrid(int width, int height, int tileSize, int overlap)
    {
        Width = width;
        Height = height;
        TileSize = tileSize;
        Overlap = overlap;
        Columns = Spans(width, tileSize, overlap);
        Rows = Spans(height, tileSize, overlap);
        var tiles = new TileRect[Columns.Count * Rows.Count];
        for (var r = 0; r < Rows.Count; r++)
        {
            for (var c = 0; c < Columns.Count; c++)
            {
                var index = r * Columns.Count + c;
                tiles[index] = new TileRect(index, c, r, Columns[c].Start, Rows[r].Start, Columns[c].Length, Rows[r].Length);
            }
        }

        Tiles = tiles;
        _columnWeights = BlendWeights.Profiles(Columns, width);
        _rowWeights = BlendWeights.Profiles(Rows, height);
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Requested tile side; a tile is narrower only along an axis where the whole image is.</summary>
    public int TileSize { get; }

    /// <summary>Least overlap between neighbouring tiles (actual overlaps may be a few latent cells wider).</summary>
    public int Overlap { get; }

    /// <summary>Horizontal spans, left to right.</summary>
    public IReadOnlyList<TileSpan> Columns { get; }

    /// <summary>Vertical spans, top to bottom.</summary>
    public IReadOnlyList<TileSpan> Rows { get; }

    /// <summary>All tiles in row-major order; <c>Tiles[i].Index == i</c>.</summary>
    public IReadOnlyList<TileRect> Tiles { get; }

    /// <summary>
    /// Cuts a <paramref name="width"/>×<paramref name="height"/> image into tiles of <paramref name="tileSize"/> pixels
    /// that overlap by at least <paramref name="overlap"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A size is not a positive multiple of 8, or the overlap is not in [0, tileSize/2].</exception>
    public static TileGrid Create(int width, int height, int tileSize, int overlap)
    {
        RequireAligned(width, nameof(width));
        RequireAligned(height, nameof(height));
        RequireAligned(tileSize, nameof(tileSize));
        if (overlap < 0 || overlap % Alignment != 0 || overlap > tileSize / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(overlap), overlap, $"Overlap must be a multiple of {Alignment} between 0 and half the tile size ({tileSize / 2}).");
        }

        return new TileGrid(width, height, tileSize, overlap);
    }

    /// <summary>Number of tiles <see cref="Create"/> would make, without making them (for validation of huge requests).</summary>
    public static long CountTiles(int width, int height, int tileSize, int overlap) =>
        (long)SpanCount(width, tileSize, overlap) * SpanCount(height, tileSize, overlap);

    /// <summary>Blend weight of each pixel of column <paramref name="column"/>, left to right (length = the column's width).</summary>
    public ReadOnlySpan<float> ColumnWeights(int column) => _columnWeights[column];

    /// <summary>Blend weight of each pixel row of row <paramref name="row"/>, top to bottom (length = the row's height).</summary>
    public ReadOnlySpan<float> RowWeights(int row) => _rowWeights[row];

    /// <summary>A copy of <see cref="ColumnWeights"/> for callers that keep arrays (the engine's stitch layout).</summary>
    public float[] ColumnWeightsArray(int column) => (float[])_columnWeights[column].Clone();

    /// <summary>A copy of <see cref="RowWeights"/>.</summary>
    public float[] RowWeightsArray(int row) => (float[])_rowWeights[row].Clone();

    /// <summary>
    /// Weight of tile <paramref name="tileIndex"/> at image pixel (<paramref name="x"/>, <paramref name="y"/>): 0 outside
    /// the tile; over all tiles the weights at any pixel sum to 1.
    /// </summary>
    public float Weight(int tileIndex, int x, int y)
    {
        var tile = Tiles[tileIndex];
        return tile.Contains(x, y) ? _columnWeights[tile.Column][x - tile.X] * _rowWeights[tile.Row][y - tile.Y] : 0f;
    }

    private static int SpanCount(int total, int tileSize, int overlap) =>
        total <= tileSize ? 1 : (int)Math.Ceiling((double)(total - overlap) / (tileSize - overlap));

    private static TileSpan[] Spans(int total, int tileSize, int overlap)
    {
        if (total <= tileSize)
        {
            return [new TileSpan(0, total)];
        }

        var count = SpanCount(total, tileSize, overlap);
        // Starts in latent cells, spread evenly from 0 to total - tileSize. With count chosen as above the stride
        // (rounded down to cells) never exceeds tileSize - overlap, so every overlap is at least the requested one.
        var lastCell = (total - tileSize) / Alignment;
        var spans = new TileSpan[count];
        for (var i = 0; i < count; i++)
        {
            var cell = (int)((long)i * lastCell / (count - 1));
            spans[i] = new TileSpan(cell * Alignment, tileSize);
        }

        return spans;
    }

    private static void RequireAligned(int value, string name)
    {
        if (value <= 0 || value % Alignment != 0)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a positive multiple of {Alignment}.");
        }
    }
}
