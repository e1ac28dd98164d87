using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Hires;

/// <summary>Supplies finished tiles by index: rendered on the spot (one machine) or fetched from the artifact store (the farm).</summary>
public interface ITileSource
{
    /// <summary>The finished tile <paramref name="tileIndex"/>, exactly the size of its bounds in the layout.</summary>
    ValueTask<RgbImage> GetTileAsync(int tileIndex, CancellationToken cancellationToken);
}

/// <summary>Reported after each stitched band of rows.</summary>
/// <param name="RowsWritten">Rows of the final image written so far.</param>
/// <param name="Height">Rows in all.</param>
/// <param name="TilesHeld">Tiles in memory at this moment (at most about two rows of tiles).</param>
public readonly record struct StitchProgress(int RowsWritten, int Height, int TilesHeld);

/// <summary>
/// Blends finished tiles into the final PNG, top to bottom, never holding the whole image: a tile is requested when the
/// first row it covers is reached and dropped after its last row, so memory is the tiles overlapping the current row
/// (about two rows of tiles, O(tile height × width)) plus one scanline of accumulators.
/// </summary>
public static class TileStitcher
{
    /// <summary>Rows stitched between progress reports and cancellation checks.</summary>
    public const int BandHeight = 64;

    /// <summary>
    /// Stitches every tile of <paramref name="layout"/> into a PNG written to <paramref name="output"/>, with
    /// <paramref name="parameters"/> (if any) in its <c>parameters</c> text chunk.
    /// </summary>
    /// <remarks>
    /// Pixel value = round(Σ tile pixel × (column weight × row weight)), summed in tile-index order in float, so the result
    /// is a pure function of the tiles and the layout: the farm's stitch and a single machine's are byte-identical.
    /// </remarks>
    public static async Task StitchAsync(
        HiresLayout layout, ITileSource tiles, Stream output, string? parameters, IProgress<StitchProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(tiles);
        ArgumentNullException.ThrowIfNull(output);
        var width = layout.Width;
        var text = parameters is null ? null : new[] { KeyValuePair.Create(PngCodec.ParametersKeyword, parameters) };
        await using var png = new StreamingPngWriter(output, width, layout.Height, text);
        var accumulator = new float[width * 3];
        var row = new byte[width * 3];
        var held = new List<(HiresTile Tile, RgbImage Image)>();
        var next = 0;
        for (var y = 0; y < layout.Height; y++)
        {
            if (y % BandHeight == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            held.RemoveAll(h => h.Tile.Bounds.Bottom <= y);
            while (next < layout.Tiles.Count && layout.Tiles[next].Bounds.Y <= y)
            {
                var tile = layout.Tiles[next++];
                var image = await tiles.GetTileAsync(tile.Index, cancellationToken);
                if (image.Width != tile.Bounds.Width || image.Height != tile.Bounds.Height)
                {
                    throw new InvalidDataException($"Tile {tile.Index} is {image.Width}x{image.Height}; the layout expects {tile.Bounds.Width}x{tile.Bounds.Height}.");
                }

                // Kept in index order (tiles arrive in index order and removal keeps order), which fixes the summation order.
                held.Add((tile, image));
            }

            Array.Clear(accumulator);
            foreach (var (tile, image) in held)
            {
                Accumulate(accumulator, tile, image, y);
            }

            for (var i = 0; i < row.Length; i++)
            {
                row[i] = (byte)Math.Clamp(MathF.Round(accumulator[i], MidpointRounding.ToEven), 0f, 255f);
            }

            await png.WriteRowAsync(row, cancellationToken);
            if (progress is not null && ((y + 1) % BandHeight == 0 || y + 1 == layout.Height))
            {
                progress.Report(new StitchProgress(y + 1, layout.Height, held.Count));
            }
        }

        await png.CompleteAsync(cancellationToken);
    }

    private static void Accumulate(float[] accumulator, HiresTile tile, RgbImage image, int y)
    {
        var b = tile.Bounds;
        var rowWeight = tile.RowWeights[y - b.Y];
        var source = image.Pixels.AsSpan((y - b.Y) * b.Width * 3, b.Width * 3);
        var target = accumulator.AsSpan(b.X * 3, b.Width * 3);
        var columnWeights = tile.ColumnWeights;
        for (var x = 0; x < b.Width; x++)
        {
            var w = columnWeights[x] * rowWeight;
            var p = x * 3;
            target[p] += source[p] * w;
            target[p + 1] += source[p + 1] * w;
            target[p + 2] += source[p + 2] * w;
        }
    }
}
