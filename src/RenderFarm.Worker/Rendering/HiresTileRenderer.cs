using RenderFarm.Contracts;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;

namespace RenderFarm.Worker.Rendering;

/// <summary>
/// Renders <see cref="RenderModes.HiresTile"/> items: the tile's region of the base render upscaled to the target size
/// (<see cref="RegionUpscaler"/>, or the job's upscaler model through <see cref="ModelBaseUpscaler"/>, from the base region only) and refined by img2img at the tile's seed, prompt and
/// strength with <see cref="TileRefiner"/>, the same code <see cref="HiresPipeline"/> runs on one machine, so a
/// farm tile has exactly the bytes of the single-machine render's tile.
/// </summary>
internal static class HiresTileRenderer
{
    /// <summary>
    /// Checks every item against the job's rebuilt tile grid and decodes the base, before any model is loaded: a bad
    /// item fails at once, for good.
    /// </summary>
    /// <exception cref="ArgumentException">An item's hires part, size or strength does not fit its grid, or the base cannot be decoded.</exception>
    public static IReadOnlyList<(RenderItem Item, TileRefinement Refinement)> Prepare(RenderBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.InitImage is not { } encodedBase)
        {
            throw new ArgumentException("A hires-tile item needs its base image.", nameof(batch));
        }

        var baseKey = batch.First.Hires?.BaseImageKey ?? "(none)";
        var baseImage = HiresArtifacts.Decode(encodedBase.Span, baseKey, "base image");
        return [.. batch.Items.Select(item => (item, Refinement(item, baseImage)))];
    }

    /// <summary>Renders the prepared tiles one by one (each has its own init image), reporting each tile's steps.</summary>
    /// <param name="pipeline">The model that refines.</param>
    /// <param name="upscaler">The job's upscaler (<see cref="HiresPart.Upscaler"/>); null for Mitchell resampling.</param>
    /// <param name="tiles">The prepared tiles.</param>
    /// <param name="progress">Steps of each tile.</param>
    /// <param name="cancellationToken">Stops between and within tiles.</param>
    public static async Task<IReadOnlyList<RenderedImage>> RenderAsync(
        StableDiffusionPipeline pipeline,
        IBaseUpscaler? upscaler,
        IReadOnlyList<(RenderItem Item, TileRefinement Refinement)> tiles,
        IProgress<RenderStep>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(tiles);
        var refiner = new TileRefiner(pipeline, upscaler);
        var steps = progress is null ? null : new StepProgress(progress);
        var images = new List<RenderedImage>(tiles.Count);
        foreach (var (item, refinement) in tiles)
        {
            // The upscale of the region is CPU work too: the whole tile runs off the consumer's thread.
            var image = await Task.Run(() => refiner.RefineAsync(refinement, steps, cancellationToken), cancellationToken);
            images.Add(new RenderedImage(item.ItemId, image.ToPng()));
        }

        return images;
    }

    /// <summary>The prepared tiles only upscaled (an upscale job's): each the region of the upscaled base, one step each.</summary>
    /// <param name="upscaler">The job's upscaler; null for Mitchell resampling.</param>
    /// <param name="tiles">The prepared tiles.</param>
    /// <param name="progress">One step per tile.</param>
    /// <param name="cancellationToken">Stops between and within tiles.</param>
    public static IReadOnlyList<RenderedImage> Upscale(
        IBaseUpscaler? upscaler,
        IReadOnlyList<(RenderItem Item, TileRefinement Refinement)> tiles,
        IProgress<RenderStep>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        upscaler ??= ResamplingBaseUpscaler.Instance;
        var images = new List<RenderedImage>(tiles.Count);
        foreach (var (item, refinement) in tiles)
        {
            // Only the region is upscaled, exactly as a hires tile's source is before its img2img (TileRefiner).
            var region = upscaler.UpscaleRegion(refinement.BaseImage, refinement.TargetWidth, refinement.TargetHeight, refinement.Tile, cancellationToken);
            images.Add(new RenderedImage(item.ItemId, PngCodec.Encode(region, parameters: null)));
            progress?.Report(new RenderStep(1, 1, null));
        }

        return images;
    }

    /// <summary>The refinement of <paramref name="item"/>'s tile, as <see cref="HiresPipeline.RefineTileAsync"/> builds it.</summary>
    internal static TileRefinement Refinement(RenderItem item, RgbImage baseImage)
    {
        var (part, grid) = HiresArtifacts.Grid(item, HiresRoles.Tile);
        if (part.TileIndex < 0 || part.TileIndex >= grid.Tiles.Count)
        {
            throw new ArgumentException($"Tile index {part.TileIndex} is outside the grid's {grid.Tiles.Count} tiles.", nameof(item));
        }

        var tile = grid.Tiles[part.TileIndex];
        if (item.Width != tile.Width || item.Height != tile.Height)
        {
            throw new ArgumentException(
                $"Tile {tile.Index} is {tile.Width}x{tile.Height} in its grid, but the item asks for {item.Width}x{item.Height}.", nameof(item));
        }

        if (item.Strength is not { } strength)
        {
            throw new ArgumentException("A hires-tile item needs its strength.", nameof(item));
        }

        var settings = new RefineSettings
        {
            Steps = item.Steps,
            GuidanceScale = item.GuidanceScale,
            Sampler = item.Sampler,
            Strength = strength,
            NegativePrompt = item.NegativePrompt,
        };
        // The item's seed and prompt are the tile's own, derived by the coordinator (TileDerivation) as the CLI derives them.
        return new TileRefinement(
            baseImage, part.TargetWidth, part.TargetHeight, new PixelRect(tile.X, tile.Y, tile.Width, tile.Height),
            unchecked((ulong)item.Seed), item.Prompt, settings);
    }

    /// <summary>Reports on the render thread itself, as <see cref="EngineItemRenderer"/> does, so steps keep their order.</summary>
    private sealed class StepProgress(IProgress<RenderStep> inner) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => inner.Report(new RenderStep(value.Step, value.TotalSteps, value.Latents));
    }
}
