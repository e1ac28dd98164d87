using RenderFarm.Contracts;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Domain.Tiling;
using RenderFarm.Storage;

namespace RenderFarm.Worker.Rendering;

/// <summary>What hires tile and stitch items share: reading their inputs from the store and rebuilding the job's tiling.</summary>
internal static class HiresArtifacts
{
    /// <summary>The whole object under <paramref name="key"/>; a missing one raises <see cref="HiresInputMissingException"/>.</summary>
    public static async Task<byte[]> ReadAsync(IArtifactStore store, string key, string what, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await store.OpenReadAsync(key, cancellationToken);
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken);
            return buffer.ToArray();
        }
        catch (ArtifactNotFoundException ex)
        {
            throw new HiresInputMissingException(key, $"The {what} of the hires image is not in the artifact store under '{key}'.", ex);
        }
    }

    /// <summary>Decodes a stored input; undecodable bytes are bad input that no retry mends.</summary>
    public static RgbImage Decode(ReadOnlySpan<byte> encoded, string key, string what)
    {
        try
        {
            return PngCodec.Decode(encoded);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new ArgumentException($"The {what} under '{key}' cannot be decoded: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The item's <see cref="HiresPart"/>, checked to have <paramref name="role"/>, and the job's tile grid rebuilt from it
    /// exactly (the coordinator cut the job with the same <see cref="TileGrid.Create"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The part is missing, of another role, or describes no valid grid.</exception>
    public static (HiresPart Part, TileGrid Grid) Grid(RenderItem item, string role)
    {
        var part = item.Hires
            ?? throw new ArgumentException($"A {item.Mode} item needs its hires part (RenderItem.Hires).", nameof(item));
        if (part.Role != role)
        {
            throw new ArgumentException($"A {item.Mode} item must have hires role '{role}', not '{part.Role}'.", nameof(item));
        }

        TileGrid grid;
        try
        {
            grid = TileGrid.Create(part.TargetWidth, part.TargetHeight, part.TileSize, part.Overlap);
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw new ArgumentException($"The hires part does not describe a tile grid: {ex.Message}", nameof(item), ex);
        }

        if (grid.Tiles.Count != part.TileCount)
        {
            throw new ArgumentException(
                $"A {part.TargetWidth}x{part.TargetHeight} image in tiles of {part.TileSize} (overlap {part.Overlap}) has {grid.Tiles.Count} tiles, but the item says {part.TileCount}.",
                nameof(item));
        }

        return (part, grid);
    }

    /// <summary>
    /// The engine's view of the grid, built as the single-machine render builds it (seed and prompt per tile from
    /// <see cref="TileDerivation"/>), so the stitch blends with the very same weights.
    /// </summary>
    public static HiresLayout Layout(TileGrid grid, long jobSeed, string prompt) =>
        new(grid.Width, grid.Height, grid.TileSize, grid.Overlap, [.. grid.Tiles.Select(t => new HiresTile(
            t.Index,
            new PixelRect(t.X, t.Y, t.Width, t.Height),
            grid.ColumnWeightsArray(t.Column),
            grid.RowWeightsArray(t.Row),
            unchecked((ulong)TileDerivation.Seed(jobSeed, t.Index)),
            TileDerivation.Prompt(prompt, t.Index)))]);
}
