using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Hires;

/// <summary>How tiles are refined: the img2img settings every tile of one image shares.</summary>
public sealed record RefineSettings
{
    public int Steps { get; init; } = 20;
    public double GuidanceScale { get; init; } = 7.5;
    public string Sampler { get; init; } = SamplerNames.EulerAncestral;
    /// <summary>DDIM's η.</summary>
    public double Eta { get; init; }
    /// <summary>img2img strength: the fraction of the schedule re-run on each tile.</summary>
    public double Strength { get; init; } = 0.35;
    public string NegativePrompt { get; init; } = "";
}

/// <summary>One tile to refine: everything a worker needs besides the model.</summary>
/// <param name="BaseImage">The base render (small: the model's native size).</param>
/// <param name="TargetWidth">Final image width.</param>
/// <param name="TargetHeight">Final image height.</param>
/// <param name="Tile">The tile's bounds in the final image.</param>
/// <param name="Seed">The tile's derived seed.</param>
/// <param name="Prompt">The tile's derived prompt.</param>
/// <param name="Settings">img2img settings shared by the image's tiles.</param>
public sealed record TileRefinement(RgbImage BaseImage, int TargetWidth, int TargetHeight, PixelRect Tile, ulong Seed, string Prompt, RefineSettings Settings);

/// <summary>
/// Refines one tile of a hires image: its region of the base image upscaled to the target scale (from the base region
/// only, never the whole upscale), then img2img at the tile's seed and the image's strength.
/// </summary>
public sealed class TileRefiner
{
    private readonly StableDiffusionPipeline _pipeline;
    private readonly IBaseUpscaler _upscaler;

    /// <param name="pipeline">The model that refines.</param>
    /// <param name="upscaler">How the base is upscaled under each tile; Mitchell resampling when null.</param>
    public TileRefiner(StableDiffusionPipeline pipeline, IBaseUpscaler? upscaler = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        _upscaler = upscaler ?? ResamplingBaseUpscaler.Instance;
    }

    /// <summary>The img2img input of a tile with the default resampling: the upscaled base pixels under it (bit-identical to a crop of the full upscale).</summary>
    public static RgbImage SourceRegion(TileRefinement refinement)
    {
        ArgumentNullException.ThrowIfNull(refinement);
        return RegionUpscaler.Upscale(refinement.BaseImage, refinement.TargetWidth, refinement.TargetHeight, refinement.Tile);
    }

    /// <summary>The img2img request that refines the tile (exposed so tests and benchmarks can run the same render untiled).</summary>
    public static GenerationRequest Request(TileRefinement refinement, RgbImage source)
    {
        ArgumentNullException.ThrowIfNull(refinement);
        var s = refinement.Settings;
        return new GenerationRequest
        {
            Images = [new ImageSpec(refinement.Prompt, s.NegativePrompt, refinement.Seed)],
            Width = refinement.Tile.Width,
            Height = refinement.Tile.Height,
            Steps = s.Steps,
            GuidanceScale = s.GuidanceScale,
            Sampler = s.Sampler,
            Eta = s.Eta,
            Mode = GenerationMode.ImageToImage,
            InitImage = source,
            Strength = s.Strength,
        };
    }

    /// <summary>Renders the tile; progress is reported per denoising step of this tile.</summary>
    public async Task<GeneratedImage> RefineAsync(TileRefinement refinement, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(refinement);
        var source = _upscaler.UpscaleRegion(refinement.BaseImage, refinement.TargetWidth, refinement.TargetHeight, refinement.Tile, cancellationToken);
        var result = await _pipeline.GenerateAsync(Request(refinement, source), progress, cancellationToken);
        return result.Images[0];
    }
}
