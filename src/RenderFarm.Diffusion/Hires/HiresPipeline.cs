using System.Globalization;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;

namespace RenderFarm.Diffusion.Hires;

/// <summary>A whole hires image on one machine.</summary>
public sealed record HiresRequest
{
    /// <summary>The tiles, their blend weights, seeds and prompts (built by the host from the domain's tile grid).</summary>
    public required HiresLayout Layout { get; init; }
    public required string Prompt { get; init; }
    /// <summary>The job seed: the base render's seed (tiles carry their own derived seeds).</summary>
    public required ulong Seed { get; init; }
    /// <summary>
    /// Width of the base render; null (with <see cref="BaseHeight"/>) for the model's native area at the target's
    /// aspect ratio (<see cref="HiresPipeline.DefaultBaseSize"/>).
    /// </summary>
    public int? BaseWidth { get; init; }
    /// <summary>Height of the base render; null with <see cref="BaseWidth"/> for the model's default.</summary>
    public int? BaseHeight { get; init; }
    /// <summary>A base image to upscale instead of rendering one (its size replaces BaseWidth/BaseHeight).</summary>
    public RgbImage? BaseImage { get; init; }
    /// <summary>Steps, sampler and guidance of the base render and the tiles; strength of the tiles.</summary>
    public RefineSettings Settings { get; init; } = new();
    /// <summary>
    /// The name of the super-resolution model that upscales the base (recorded as <c>Hires upscaler</c>); null for
    /// Mitchell resampling. The model itself is given to <see cref="HiresPipeline"/>, which checks the two agree.
    /// </summary>
    public string? Upscaler { get; init; }
}

/// <summary>Which part of a hires render is running.</summary>
public enum HiresStage
{
    /// <summary>txt2img of the base image at the model's native size.</summary>
    Base,
    /// <summary>img2img of one tile.</summary>
    Tile,
}

/// <summary>Progress of a hires render: per denoising step of the base and of each tile, and per finished tile.</summary>
/// <param name="Stage">Base render or tile refinement.</param>
/// <param name="TilesDone">Tiles finished so far.</param>
/// <param name="TileCount">Tiles in all.</param>
/// <param name="Step">Step within the current render.</param>
/// <param name="TotalSteps">Steps of the current render.</param>
public readonly record struct HiresProgress(HiresStage Stage, int TilesDone, int TileCount, int Step, int TotalSteps);

/// <summary>What a hires render produced (the image itself went to the output stream).</summary>
/// <param name="BaseImage">The base render the tiles refined.</param>
/// <param name="Parameters">The text in the PNG's <c>parameters</c> chunk.</param>
/// <param name="Truncations">Prompts cut to CLIP's 77 tokens (reported once, from the base render).</param>
public sealed record HiresResult(RgbImage BaseImage, string Parameters, IReadOnlyList<PromptTruncation> Truncations);

/// <summary>
/// Ultimate-SD-Upscale-style hires on one machine: a base render at the model's native size, then each tile refined by
/// img2img from its own region of the upscaled base, blended into a PNG streamed to the output. Tiles are rendered when
/// the stitcher reaches them, so at most about two rows of tiles are ever in memory; the farm runs the same steps with
/// tiles spread over workers (<see cref="TileRefiner"/>) and the same <see cref="TileStitcher"/>.
/// </summary>
public sealed class HiresPipeline
{
    private readonly StableDiffusionPipeline _pipeline;
    private readonly TileRefiner _refiner;
    private readonly IBaseUpscaler _upscaler;

    /// <param name="pipeline">The model.</param>
    /// <param name="upscaler">How the base is upscaled under each tile; Mitchell resampling when null.</param>
    public HiresPipeline(StableDiffusionPipeline pipeline, IBaseUpscaler? upscaler = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        _upscaler = upscaler ?? ResamplingBaseUpscaler.Instance;
        _refiner = new TileRefiner(pipeline, _upscaler);
    }

    /// <summary>Renders <paramref name="request"/> and writes the PNG to <paramref name="output"/>.</summary>
    public async Task<HiresResult> RenderAsync(HiresRequest request, Stream output, IProgress<HiresProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(output);
        if (request.Upscaler != _upscaler.Name)
        {
            throw new ArgumentException($"The request names upscaler '{request.Upscaler ?? "(none)"}' but the pipeline has '{_upscaler.Name ?? "(none)"}'.", nameof(request));
        }

        var layout = request.Layout;
        var settings = request.Settings;
        var tileCount = layout.Tiles.Count;
        IReadOnlyList<PromptTruncation> truncations = [];
        var baseImage = request.BaseImage;
        if (baseImage is null)
        {
            if ((request.BaseWidth is null) != (request.BaseHeight is null))
            {
                throw new ArgumentException("BaseWidth and BaseHeight go together; give both, or neither for the model's native size.", nameof(request));
            }

            var (baseWidth, baseHeight) = request.BaseWidth is { } w && request.BaseHeight is { } h
                ? (w, h)
                : DefaultBaseSize(layout.Width, layout.Height, _pipeline.Model.DefaultImageSide);
            var generated = await _pipeline.GenerateAsync(new GenerationRequest
            {
                Images = [new ImageSpec(request.Prompt, settings.NegativePrompt, request.Seed)],
                Width = baseWidth,
                Height = baseHeight,
                Steps = settings.Steps,
                GuidanceScale = settings.GuidanceScale,
                Sampler = settings.Sampler,
                Eta = settings.Eta,
            }, progress is null ? null : new StepProgress(progress, HiresStage.Base, 0, tileCount), cancellationToken);
            baseImage = generated.Images[0].Image;
            truncations = generated.Truncations;
        }

        var parameters = Parameters(request, baseImage);
        var source = new RenderingTileSource(this, request, baseImage, progress);
        await TileStitcher.StitchAsync(layout, source, output, parameters, progress: null, cancellationToken);
        return new HiresResult(baseImage, parameters, truncations);
    }

    /// <summary>
    /// The base render a target gets when the request names none: about <paramref name="modelSide"/>² pixels (the
    /// model's <see cref="Models.ModelFolder.DefaultImageSide"/> squared) at the target's aspect ratio, sides rounded to
    /// multiples of 8, at least 64 and never larger than the target.
    /// </summary>
    /// <remarks>
    /// The rule of the domain's <c>HiresRequestRules.DefaultBaseSize</c>, which the farm and the CLI use; repeated here
    /// because the engine stays free of farm types (a test holds the two equal).
    /// </remarks>
    public static (int Width, int Height) DefaultBaseSize(int width, int height, int modelSide)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(modelSide);
        const int Alignment = 8;
        const int MinSide = 64;
        var aspect = (double)width / height;
        var area = (double)modelSide * modelSide;
        return (Side(Math.Sqrt(area * aspect), width), Side(Math.Sqrt(area / aspect), height));

        static int Side(double ideal, int target) =>
            Math.Min(Math.Max((int)Math.Round(ideal / Alignment) * Alignment, MinSide), target);
    }

    /// <summary>
    /// The A1111-style parameters of the final image, plus the hires keys that reproduce the tiling (unknown keys are
    /// ignored by <see cref="GenerationParameters.Parse"/> and by other tools).
    /// </summary>
    public string Parameters(HiresRequest request, RgbImage baseImage)
    {
        ArgumentNullException.ThrowIfNull(baseImage);
        return Parameters(request, _pipeline.Model.Name, baseImage.Width, baseImage.Height);
    }

    /// <summary>
    /// The same text without a loaded model: for the farm's stitch, which blends stored tiles and never opens the model.
    /// <paramref name="model"/> is the model's name (its folder name, as <see cref="Models.ModelFolder.Name"/> reads it).
    /// </summary>
    public static string Parameters(HiresRequest request, string model, int baseWidth, int baseHeight)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrEmpty(model);
        var s = request.Settings;
        var layout = request.Layout;
        var text = new GenerationParameters
        {
            Prompt = request.Prompt,
            NegativePrompt = s.NegativePrompt,
            Steps = s.Steps,
            Sampler = s.Sampler,
            GuidanceScale = s.GuidanceScale,
            Seed = request.Seed,
            Width = layout.Width,
            Height = layout.Height,
            Model = model,
            DenoisingStrength = s.Strength,
        }.Format();
        return text + string.Create(CultureInfo.InvariantCulture,
            $", Hires base: {baseWidth}x{baseHeight}, Hires tile: {layout.TileSize}, Hires overlap: {layout.Overlap}, Hires tiles: {layout.Tiles.Count}")
            + (request.Upscaler is { } upscaler ? $", Hires upscaler: {upscaler}" : "");
    }

    /// <summary>
    /// Refines tile <paramref name="tileIndex"/> of <paramref name="request"/> from <paramref name="baseImage"/>, exactly as
    /// <see cref="RenderAsync"/> does (the farm's tile items must give the same bytes; tests compare them).
    /// </summary>
    public Task<GeneratedImage> RefineTileAsync(HiresRequest request, RgbImage baseImage, int tileIndex, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(baseImage);
        var layout = request.Layout;
        var tile = layout.Tiles[tileIndex];
        var refinement = new TileRefinement(baseImage, layout.Width, layout.Height, tile.Bounds, tile.Seed, tile.Prompt, request.Settings);
        return _refiner.RefineAsync(refinement, progress, cancellationToken);
    }

    /// <summary>Renders each tile when the stitcher asks for it (in index order), so finished tiles never pile up.</summary>
    private sealed class RenderingTileSource(HiresPipeline owner, HiresRequest request, RgbImage baseImage, IProgress<HiresProgress>? progress) : ITileSource
    {
        private int _done;

        public async ValueTask<RgbImage> GetTileAsync(int tileIndex, CancellationToken cancellationToken)
        {
            var layout = request.Layout;
            var steps = progress is null ? null : new StepProgress(progress, HiresStage.Tile, _done, layout.Tiles.Count);
            var image = await owner.RefineTileAsync(request, baseImage, tileIndex, steps, cancellationToken);
            _done++;
            progress?.Report(new HiresProgress(HiresStage.Tile, _done, layout.Tiles.Count, 0, 0));
            return image.Image;
        }
    }

    /// <summary>Forwards the engine's per-step progress on the rendering thread (no posting, no allocation per step).</summary>
    private sealed class StepProgress(IProgress<HiresProgress> target, HiresStage stage, int tilesDone, int tileCount) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => target.Report(new HiresProgress(stage, tilesDone, tileCount, value.Step, value.TotalSteps));
    }
}
