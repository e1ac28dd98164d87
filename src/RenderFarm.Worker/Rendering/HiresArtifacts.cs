using RenderFarm.Contracts;
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
            return await store.ReadAllBytesAsync(key, cancellationToken);
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
}
