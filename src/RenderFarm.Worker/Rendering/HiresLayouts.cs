using RenderFarm.Diffusion.Hires;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Worker.Rendering;

/// <summary>
/// The engine's view of the domain's tile grid. One builder for the farm's stitch and the one-machine
/// <c>renderfarm render</c>, so both blend with the very same weights, seeds and prompts.
/// </summary>
public static class HiresLayouts
{
    /// <summary>Bounds and blend weights from <paramref name="grid"/>, each tile's seed and prompt from <see cref="TileDerivation"/>.</summary>
    public static HiresLayout FromGrid(TileGrid grid, long jobSeed, string prompt)
    {
        ArgumentNullException.ThrowIfNull(grid);
        return new(grid.Width, grid.Height, grid.TileSize, grid.Overlap, [.. grid.Tiles.Select(t => new HiresTile(
            t.Index,
            new PixelRect(t.X, t.Y, t.Width, t.Height),
            grid.ColumnWeightsArray(t.Column),
            grid.RowWeightsArray(t.Row),
            unchecked((ulong)TileDerivation.Seed(jobSeed, t.Index)),
            TileDerivation.Prompt(prompt, t.Index)))]);
    }
}
