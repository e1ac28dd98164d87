namespace RenderFarm.Coordinator.Apis;

/// <summary>
/// The body of <c>POST /v1/jobs</c>: the fields of <see cref="Domain.Requests.JobRequest"/> as JSON (camelCase),
/// all optional at the JSON level so that a missing field is reported by name like every other mistake.
/// </summary>
/// <param name="Prompt">Text the image should show (optional when <c>sweep.prompts</c> is given).</param>
/// <param name="NegativePrompt">Text the image should avoid (replaced by <c>sweep.negativePrompts</c> when given).</param>
/// <param name="Width">Pixels, a multiple of 8 (optional when <c>sweep.sizes</c> is given).</param>
/// <param name="Height">Pixels, a multiple of 8 (optional when <c>sweep.sizes</c> is given).</param>
/// <param name="Steps">Denoising steps, 1..1000 (optional when <c>sweep.steps</c> is given).</param>
/// <param name="GuidanceScale">Classifier-free guidance, 0..50 (optional when <c>sweep.guidanceScales</c> is given).</param>
/// <param name="Sampler">Sampler name, e.g. <c>euler_a</c> (optional when <c>sweep.samplers</c> is given).</param>
/// <param name="Seed">Seed of item 0; item i uses seed + i. Random when left out.</param>
/// <param name="Count">Images per sweep combination; 1 when left out.</param>
/// <param name="Model">Model name; the coordinator's default when left out.</param>
/// <param name="Mode"><c>txt2img</c> (default), <c>img2img</c>, <c>inpaint</c>, <c>hires</c> (a large image: a base render refined in tiles spread over the workers) or <c>upscale</c> (<c>initImage</c> enlarged to <c>width</c>×<c>height</c> by <c>upscaler</c> in tiles spread over the workers, no diffusion: <c>prompt</c>, <c>steps</c>, <c>guidanceScale</c> and <c>sampler</c> are optional and unused, <c>strength</c> is refused).</param>
/// <param name="InitImage">Base64 PNG (a <c>data:image/png;base64,</c> prefix is allowed) for img2img and inpaint; for hires, the base image (optional); for upscale, the image to enlarge (required).</param>
/// <param name="Mask">Base64 PNG mask (white = repaint) for inpaint.</param>
/// <param name="Strength">How much of the init image is replaced, in (0, 1] (replaced by <c>sweep.strengths</c> when given); for hires, the tiles' refinement strength (default 0.35).</param>
/// <param name="Sweep">Axes whose cross product the job renders.</param>
/// <param name="Priority">-100..100 (default 0); a higher-priority job's work is sent before lower-priority work still waiting; jobs of equal priority share the farm (Coordinator:Dispatcher:FairShare).</param>
/// <param name="Tile">Hires: tile side in pixels of the final image, a multiple of 8 (default: the model's native side, read from its files in the model store: 512 for SD 1.x, 768 for a v-prediction model such as SD 2.x 768-v, 1024 for SDXL; 512 for a model the store does not hold and for upscale jobs).</param>
/// <param name="Overlap">Hires: least overlap between neighbouring tiles in pixels, a multiple of 8 (default: an eighth of that side, 64 for 512, at most half the tile).</param>
/// <param name="BaseWidth">Hires: width of the base render (default: about the model's native side squared, e.g. 512², at the target's aspect ratio).</param>
/// <param name="BaseHeight">Hires: height of the base render; given together with <paramref name="BaseWidth"/>.</param>
/// <param name="Safety">What the model's safety checker does with a flagged image: <c>off</c> (not run), <c>flag</c> (kept, recorded), <c>blur</c> or <c>block</c> (not stored; the item fails with the checker's reason). Default: <c>flag</c> when the model folder has a checker. Not for hires jobs. A mode other than <c>off</c> on a model without a checker fails its items.</param>
/// <param name="Watermark">Text (1 to 32 UTF-8 bytes) to embed as an invisible dwtDct watermark in every image, in place of the farm's own (Worker:Watermark); images of at least 256x256 only. Not for hires jobs.</param>
/// <param name="Upscaler">Hires: name of a super-resolution model in the farm's model store (or configured on the workers) that upscales the base under each tile; Mitchell resampling when left out. Required for upscale.</param>
/// <param name="Output">How the images are stored: <c>{"format": "files"}</c> (default) or <c>{"format": "webdataset", "shardSize": N}</c>.</param>
public sealed record CreateJobBody(
    string? Prompt = null,
    string? NegativePrompt = null,
    int? Width = null,
    int? Height = null,
    int? Steps = null,
    double? GuidanceScale = null,
    string? Sampler = null,
    long? Seed = null,
    int? Count = null,
    string? Model = null,
    string? Mode = null,
    string? InitImage = null,
    string? Mask = null,
    double? Strength = null,
    SweepBody? Sweep = null,
    int? Priority = null,
    int? Tile = null,
    int? Overlap = null,
    int? BaseWidth = null,
    int? BaseHeight = null,
    string? Safety = null,
    string? Watermark = null,
    string? Upscaler = null,
    OutputBody? Output = null);

/// <summary>
/// <c>output</c>: <c>format</c> <c>files</c> (default: one PNG object per image) or <c>webdataset</c> (tar shards
/// <c>datasets/{jobId}/{shard:D6}.tar</c>); <c>shardSize</c> samples per shard, 1..100000, default 1000 (webdataset only).
/// </summary>
public sealed record OutputBody(string? Format = null, int? ShardSize = null);

/// <summary>Sweep axes; each one given replaces its single-valued field (<c>sizes</c> replaces width and height; txt2img only).</summary>
public sealed record SweepBody(
    IReadOnlyList<string>? Prompts = null,
    IReadOnlyList<long>? Seeds = null,
    IReadOnlyList<double>? GuidanceScales = null,
    IReadOnlyList<int>? Steps = null,
    IReadOnlyList<string>? Samplers = null,
    IReadOnlyList<string>? NegativePrompts = null,
    IReadOnlyList<double>? Strengths = null,
    IReadOnlyList<SizeBody?>? Sizes = null);

/// <summary>One entry of <c>sweep.sizes</c>: pixels, multiples of 8.</summary>
public sealed record SizeBody(int? Width = null, int? Height = null);
