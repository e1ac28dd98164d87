using System.Numerics.Tensors;
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
        var weights = new float[width * 3];
        var values = new float[width * 3];
        var row = new byte[width * 3];
        var held = new List<HeldTile>();
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
                held.Add(new HeldTile(tile, image));
            }

            Array.Clear(accumulator);
            foreach (var h in held)
            {
                Accumulate(accumulator, weights, values, h, y);
            }

            // Round half to even, clamp, narrow: the accumulators are already integral and in range after the first two.
            TensorPrimitives.Round(accumulator, MidpointRounding.ToEven, accumulator);
            TensorPrimitives.Max(accumulator, 0f, accumulator);
            TensorPrimitives.Min(accumulator, 255f, accumulator);
            TensorPrimitives.ConvertTruncating<float, byte>(accumulator, row);
            await png.WriteRowAsync(row, cancellationToken);
            if (progress is not null && ((y + 1) % BandHeight == 0 || y + 1 == layout.Height))
            {
                progress.Report(new StitchProgress(y + 1, layout.Height, held.Count));
            }
        }

        await png.CompleteAsync(cancellationToken);
    }

    /// <summary>
    /// Adds one row of a tile: pixel × (column weight × row weight), each product and sum rounded to float separately
    /// (TensorPrimitives' Multiply and Add, never a fused multiply-add), so the result equals the plain scalar formula.
    /// </summary>
    private static void Accumulate(float[] accumulator, float[] weightScratch, float[] valueScratch, HeldTile held, int y)
    {
        var b = held.Tile.Bounds;
        var length = b.Width * 3;
        var weights = weightScratch.AsSpan(0, length);
        var values = valueScratch.AsSpan(0, length);
        TensorPrimitives.Multiply(held.ColumnWeights, held.Tile.RowWeights[y - b.Y], weights);
        TensorPrimitives.ConvertChecked<byte, float>(held.Image.Pixels.AsSpan((y - b.Y) * length, length), values);
        TensorPrimitives.Multiply(values, weights, values);
        var target = accumulator.AsSpan(b.X * 3, length);
        TensorPrimitives.Add(target, values, target);
    }

    /// <summary>A tile in memory with its column weights repeated per channel, to line up with interleaved RGB.</summary>
    private sealed class HeldTile(HiresTile tile, RgbImage image)
    {
        public HiresTile Tile { get; } = tile;
        public RgbImage Image { get; } = image;
        public float[] ColumnWeights { get; } = [.. tile.ColumnWeights.SelectMany(w => new[] { w, w, w })];
    }
}
