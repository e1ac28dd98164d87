namespace RenderFarm.Domain.Requests;

/// <summary>
/// A job as the client asked for it (the body of <c>POST /v1/jobs</c>, the CLI's flags). Raw input: nothing
/// here is trusted until <see cref="JobRequestValidator"/> has passed it. Property names map one to one onto
/// the camelCase JSON fields that validation errors name.
/// </summary>
public sealed record JobRequest
{
    public required string Prompt { get; init; }

    public string? NegativePrompt { get; init; }

    public required int Width { get; init; }

    public required int Height { get; init; }

    public required int Steps { get; init; }

    public required double GuidanceScale { get; init; }

    public required string Sampler { get; init; }

    /// <summary>Seed of item 0; item i uses Seed + i unless the sweep names seeds. Null: the host picks one.</summary>
    public long? Seed { get; init; }

    /// <summary>Images per sweep combination (or in total, without a sweep). Null means 1.</summary>
    public int? Count { get; init; }

    /// <summary>Model name; null means the host's default model.</summary>
    public string? Model { get; init; }

    /// <summary>One of <see cref="Contracts.RenderModes"/>; null means txt2img.</summary>
    public string? Mode { get; init; }

    /// <summary>Artifact key of the init image (img2img, inpaint).</summary>
    public string? InitImage { get; init; }

    /// <summary>Artifact key of the mask (inpaint).</summary>
    public string? Mask { get; init; }

    /// <summary>How much of the init image is replaced, in (0, 1]; null means <see cref="GenerationDefaults.Strength"/>.</summary>
    public double? Strength { get; init; }

    public SweepRequest? Sweep { get; init; }

    /// <summary>Dispatch order: a higher-priority job's work is sent before lower-priority work still waiting. Null means <see cref="GenerationDefaults.Priority"/>.</summary>
    public int? Priority { get; init; }

    /// <summary>Hires only: tile side in pixels of the final image; null means the hires default.</summary>
    public int? Tile { get; init; }

    /// <summary>Hires only: least overlap between neighbouring tiles, pixels; null means the hires default.</summary>
    public int? Overlap { get; init; }

    /// <summary>Hires only: width of the base render; null derives it from the target's aspect.</summary>
    public int? BaseWidth { get; init; }

    /// <summary>Hires only: height of the base render; null derives it from the target's aspect.</summary>
    public int? BaseHeight { get; init; }

    /// <summary>The safety checker's mode (<c>off</c>, <c>flag</c>, <c>blur</c>, <c>block</c>); null: flag when the model has a checker.</summary>
    public string? Safety { get; init; }

    /// <summary>Text to embed as an invisible watermark in every image; null: the farm's own, if it has one.</summary>
    public string? Watermark { get; init; }

    /// <summary>
    /// Hires only: name of a super-resolution model (a model folder with <c>renderfarm-upscaler.json</c>, resolved by
    /// workers like <see cref="Model"/>) that upscales the base under each tile; null means Mitchell resampling.
    /// </summary>
    public string? Upscaler { get; init; }

    /// <summary>How the job's images are stored; null means <see cref="OutputRequest.Files"/>.</summary>
    public OutputRequest? Output { get; init; }
}

/// <summary>
/// A job's output: <c>files</c> (one PNG object per image) or <c>webdataset</c> (tar shards of
/// <see cref="ShardSize"/> samples, each a PNG with its JSON metadata and prompt).
/// </summary>
/// <param name="Format">One of <see cref="Files"/> or <see cref="WebDataset"/>.</param>
/// <param name="ShardSize">Samples per shard (WebDataset only).</param>
public sealed record OutputRequest(string Format, int ShardSize)
{
    public const string Files = "files";
    public const string WebDataset = "webdataset";
    public const int DefaultShardSize = 1000;

    /// <summary>Largest shard: a shard is assembled in one upload, so its size bounds the assembler's spool file.</summary>
    public const int MaxShardSize = 100_000;

    public static readonly IReadOnlyList<string> Formats = [Files, WebDataset];
}

/// <summary>
/// Axes of a parameter sweep. Each axis that is given replaces the single value of the request; the job
/// renders the cross product of all axes (times <see cref="JobRequest.Count"/>).
/// </summary>
public sealed record SweepRequest
{
    public IReadOnlyList<string>? Prompts { get; init; }

    /// <summary>Explicit seeds; when given, they replace the Seed + i rule.</summary>
    public IReadOnlyList<long>? Seeds { get; init; }

    public IReadOnlyList<double>? GuidanceScales { get; init; }

    public IReadOnlyList<int>? Steps { get; init; }

    public IReadOnlyList<string>? Samplers { get; init; }

    /// <summary>img2img and inpaint strengths; when given, they replace <see cref="JobRequest.Strength"/>.</summary>
    public IReadOnlyList<double>? Strengths { get; init; }

    /// <summary>Negative prompts ("" for none); when given, they replace <see cref="JobRequest.NegativePrompt"/>.</summary>
    public IReadOnlyList<string>? NegativePrompts { get; init; }

    /// <summary>
    /// Image sizes (txt2img only); when given, they replace <see cref="JobRequest.Width"/> and
    /// <see cref="JobRequest.Height"/>, which then hold the largest of them (what placement must fit).
    /// </summary>
    public IReadOnlyList<ImageSize>? Sizes { get; init; }
}

/// <summary>An image size in pixels.</summary>
public sealed record ImageSize(int Width, int Height);

/// <summary>Values used where the request leaves a field out.</summary>
public static class GenerationDefaults
{
    public const int Count = 1;

    public const string Mode = Contracts.RenderModes.Txt2Img;

    // diffusers' img2img default: enough change to matter, enough of the init image to recognise it.
    public const double Strength = 0.8;

    public const int Priority = 0;
}
