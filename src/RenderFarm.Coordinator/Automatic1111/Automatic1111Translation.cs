using System.Text.Json;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Apis;
using RenderFarm.Domain.Tiling;
using static RenderFarm.Coordinator.Automatic1111.Automatic1111Errors;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>An A1111 call as farm jobs: the bodies of <c>POST /v1/jobs</c> it submits, and what it was understood to ask.</summary>
/// <param name="Kind"><c>txt2img</c> or <c>img2img</c>.</param>
/// <param name="Jobs">One job for the whole batch; one job per image with hires fix (a hires job makes one image).</param>
/// <param name="Hires">Hires fix: each job's image is its last item (the stitch).</param>
/// <param name="Images">batch_size × n_iter.</param>
/// <param name="Sampler">The sampler under its A1111 name, as the client named it (the scheduler is apart).</param>
/// <param name="Understood">The request with A1111's defaults filled in and images left out, echoed as <c>parameters</c>.</param>
internal sealed record Automatic1111Call(string Kind, IReadOnlyList<CreateJobBody> Jobs, bool Hires, int Images, string Sampler, GenerationBody Understood)
{
    public string Prompt => Understood.Prompt ?? "";

    public string NegativePrompt => Understood.NegativePrompt ?? "";
}

/// <summary>What a translation came to.</summary>
internal abstract record Translation
{
    private Translation()
    {
    }

    public sealed record Ok(Automatic1111Call Call) : Translation;

    /// <summary>Fields A1111 would accept but the farm cannot honour, or values out of range: 422.</summary>
    public sealed record Invalid(IReadOnlyList<FieldError> Errors) : Translation;

    /// <summary>A name A1111 would not find either (sampler, scheduler): 400, as A1111 answers.</summary>
    public sealed record NotFound(string Detail) : Translation;
}

/// <summary>
/// Turns A1111 request bodies into the farm's job bodies, so an A1111 call is submitted, validated and stored exactly
/// as <c>POST /v1/jobs</c> would (<see cref="Jobs.JobSubmission"/>); and names the domain's field errors back in
/// A1111's fields. Only checks that need A1111's own fields happen here; the domain checks every value.
/// </summary>
internal static class Automatic1111Translation
{
    public const string Txt2Img = "txt2img";
    public const string Img2Img = "img2img";

    /// <summary>
    /// Most images of one hires-fix call: each is a job of its own, submitted one after another before the call waits,
    /// so the bound keeps a single request from writing thousands of jobs; larger hires batches belong in separate calls
    /// or the job API.
    /// </summary>
    public const int MaxHiresImages = 64;

    // A1111 option values that mean "nothing extra" (no second-pass override, no refiner).
    private static readonly string[] NoneValues = ["", "None", "Use same sampler", "Use same checkpoint", "Use same scheduler"];

    public static Translation Translate(GenerationBody body, string? defaultCheckpoint)
    {
        ArgumentNullException.ThrowIfNull(body);
        var errors = new List<FieldError>();
        var kind = body is Img2ImgBody ? Img2Img : Txt2Img;

        var samplerName = !string.IsNullOrWhiteSpace(body.SamplerName) ? body.SamplerName
            : !string.IsNullOrWhiteSpace(body.SamplerIndex) ? body.SamplerIndex
            : Automatic1111Defaults.Sampler;
        var sampler = Automatic1111Samplers.Resolve(samplerName, body.Scheduler, out var displaySampler, out var samplerProblem);
        if (sampler is null)
        {
            return new Translation.NotFound(samplerProblem);
        }

        var batchSize = body.BatchSize ?? Automatic1111Defaults.BatchSize;
        var iterations = body.NIter ?? Automatic1111Defaults.NIter;
        if (batchSize < 1)
        {
            errors.Add(Field("batch_size", $"batch_size is {batchSize}; use 1 or more."));
        }

        if (iterations < 1)
        {
            errors.Add(Field("n_iter", $"n_iter is {iterations}; use 1 or more."));
        }

        RefuseUnsupported(body, errors);
        var steps = body.Steps ?? Automatic1111Defaults.Steps;
        var width = body.Width ?? Automatic1111Defaults.Width;
        var height = body.Height ?? Automatic1111Defaults.Height;
        var model = CheckpointName(body, defaultCheckpoint, errors);
        var seed = body.Seed is null or Automatic1111Defaults.RandomSeed ? (long?)null : body.Seed;
        var images = (int)Math.Clamp((long)Math.Max(batchSize, 1) * Math.Max(iterations, 1), 1, int.MaxValue);

        var job = new CreateJobBody(
            Prompt: body.Prompt ?? "",
            NegativePrompt: string.IsNullOrEmpty(body.NegativePrompt) ? null : body.NegativePrompt,
            Width: width,
            Height: height,
            Steps: steps,
            GuidanceScale: body.CfgScale ?? Automatic1111Defaults.CfgScale,
            Sampler: sampler,
            Seed: seed,
            Count: images,
            Model: model);
        var understood = body with
        {
            Prompt = body.Prompt ?? "",
            NegativePrompt = body.NegativePrompt ?? "",
            Seed = body.Seed ?? Automatic1111Defaults.RandomSeed,
            SamplerName = displaySampler,
            Scheduler = body.Scheduler ?? Automatic1111Samplers.AutomaticScheduler,
            BatchSize = batchSize,
            NIter = iterations,
            Steps = steps,
            CfgScale = job.GuidanceScale,
            Width = width,
            Height = height,
            SendImages = body.SendImages ?? true,
            SaveImages = body.SaveImages ?? false,
        };

        IReadOnlyList<CreateJobBody> jobs = [job];
        var hires = false;
        switch (body)
        {
            case Img2ImgBody img2img:
                (job, understood) = ImageToImage(img2img, job, (Img2ImgBody)understood, errors);
                jobs = [job];
                break;
            case Txt2ImgBody { EnableHr: true } txt2img:
                hires = true;
                (jobs, understood) = HiresFix(txt2img, job, (Txt2ImgBody)understood, images, errors);
                break;
            case Txt2ImgBody:
                // Without hires fix A1111 ignores denoising_strength in txt2img; the job API would refuse it.
                break;
        }

        return errors.Count > 0
            ? new Translation.Invalid(errors)
            : new Translation.Ok(new Automatic1111Call(kind, jobs, hires, images, displaySampler, understood));
    }

    /// <summary>The job API's field errors, named by A1111's fields and in its words where they differ.</summary>
    public static IReadOnlyList<FieldError> FieldErrors(IDictionary<string, string[]> errors, Automatic1111Call call)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(call);
        var hr = call.Understood as Txt2ImgBody;
        return [.. errors.SelectMany(e => e.Value.Select(message => new FieldError(PathOf(e.Key, call.Hires, hr), Reword(message))))];
    }

    private static IReadOnlyList<object> PathOf(string field, bool hires, Txt2ImgBody? hr) => field switch
    {
        "negativePrompt" => ["negative_prompt"],
        "guidanceScale" => ["cfg_scale"],
        "sampler" => ["sampler_name"],
        "count" => ["batch_size"],
        "model" => ["override_settings", "sd_model_checkpoint"],
        "initImage" => ["init_images", 0],
        "strength" => ["denoising_strength"],
        // A hires job's width and height are the upscaled target; A1111's width and height are its base render.
        "width" when hires => [hr?.HrResizeX is > 0 ? "hr_resize_x" : "hr_scale"],
        "height" when hires => [hr?.HrResizeY is > 0 ? "hr_resize_y" : "hr_scale"],
        "baseWidth" => ["width"],
        "baseHeight" => ["height"],
        "tile" or "overlap" => ["enable_hr"],
        _ => [field],
    };

    private static string Reword(string message) => message
        .Replace("guidanceScale", "cfg_scale", StringComparison.Ordinal)
        .Replace("negativePrompt", "negative_prompt", StringComparison.Ordinal)
        .Replace("initImage", "init_images", StringComparison.Ordinal);

    private static void RefuseUnsupported(GenerationBody body, List<FieldError> errors)
    {
        // Ignoring these would hand back an image the client explicitly asked to be different; say so instead.
        if (body.RestoreFaces is true)
        {
            errors.Add(Field("restore_faces", "restore_faces is not available on this farm (it has no face restoration model); send false."));
        }

        if (body.Tiling is true)
        {
            errors.Add(Field("tiling", "tiling (seamless textures) is not available on this farm; send false."));
        }

        if (body.SubseedStrength is > 0)
        {
            errors.Add(Field("subseed_strength", "variation seeds are not available on this farm; send subseed_strength 0."));
        }

        if (!string.IsNullOrEmpty(body.ScriptName))
        {
            errors.Add(Field("script_name", $"Script '{body.ScriptName}' not found: this farm runs no A1111 scripts; leave script_name out."));
        }

        foreach (var script in body.AlwaysonScripts?.Keys ?? Enumerable.Empty<string>())
        {
            errors.Add(new(["alwayson_scripts", script], $"always on script {script} not found: this farm runs no A1111 extensions; leave alwayson_scripts empty."));
        }

        if (body.RefinerCheckpoint is { } refiner && !NoneValues.Contains(refiner, StringComparer.OrdinalIgnoreCase))
        {
            errors.Add(Field("refiner_checkpoint", "refiner models are not available on this farm; leave refiner_checkpoint out."));
        }
    }

    // override_settings.sd_model_checkpoint, else the checkpoint set with POST /sdapi/v1/options, else the farm's default.
    private static string? CheckpointName(GenerationBody body, string? defaultCheckpoint, List<FieldError> errors)
    {
        if (body.OverrideSettings?.TryGetValue(Automatic1111Checkpoint.OptionName, out var value) is true)
        {
            if (value.ValueKind == JsonValueKind.String)
            {
                return Automatic1111Checkpoint.ModelName(value.GetString()!);
            }

            if (value.ValueKind != JsonValueKind.Null)
            {
                errors.Add(new(["override_settings", Automatic1111Checkpoint.OptionName], "sd_model_checkpoint must be a model name (see GET /sdapi/v1/sd-models)."));
            }
        }

        return defaultCheckpoint;
    }

    private static (CreateJobBody, Img2ImgBody) ImageToImage(Img2ImgBody body, CreateJobBody job, Img2ImgBody understood, List<FieldError> errors)
    {
        var strength = body.DenoisingStrength ?? Automatic1111Defaults.DenoisingStrength;
        understood = understood with { DenoisingStrength = strength, InitImages = null, Mask = null, InpaintingMaskInvert = body.InpaintingMaskInvert ?? 0 };
        job = job with { Mode = body.Mask is null ? RenderModes.Img2Img : RenderModes.Inpaint, Strength = strength };

        switch (body.InitImages)
        {
            case null or []:
                errors.Add(Field("init_images", "init_images is required: send one base64 image (PNG, JPEG or WebP, optionally as a data URL)."));
                break;
            case [var init]:
                job = job with { InitImage = Image(init, invert: false, ["init_images", 0], errors) };
                break;
            default:
                // A1111 pairs several init images with the images of a batch; a farm job has one init image.
                errors.Add(Field("init_images", $"init_images has {body.InitImages.Count} images; this farm takes one init image per request (send one call per image)."));
                break;
        }

        if (body.InpaintingMaskInvert is not (null or 0 or 1))
        {
            errors.Add(Field("inpainting_mask_invert", "inpainting_mask_invert is 0 (repaint the white) or 1 (repaint the black)."));
        }

        if (body.Mask is { } mask)
        {
            job = job with { Mask = Image(mask, invert: body.InpaintingMaskInvert == 1, ["mask"], errors) };
        }

        return (job, understood);
    }

    private static string? Image(string text, bool invert, IReadOnlyList<object> path, List<FieldError> errors)
    {
        var png = Automatic1111Images.TryToPngBase64(text, invert, out var problem);
        if (png is null)
        {
            errors.Add(new(path, $"{string.Join('.', path)} {problem}"));
        }

        return png;
    }

    /// <summary>
    /// Hires fix as a farm hires job: A1111's first pass (width × height) is the base render, its upscale target the
    /// hires target (A1111's rule for hr_scale and hr_resize_x/y, rounded down to whole latent cells), and
    /// denoising_strength the second pass's strength. When the target fits one tile (≤ 2048 px a side) the second
    /// pass refines the whole image at once, as A1111's does; larger targets are refined in the farm's default tiles.
    /// A hires job makes one image, so a batch becomes one job per image, seeded seed, seed + 1, … as A1111 seeds them.
    /// </summary>
    private static (IReadOnlyList<CreateJobBody>, Txt2ImgBody) HiresFix(Txt2ImgBody body, CreateJobBody job, Txt2ImgBody understood, int images, List<FieldError> errors)
    {
        var scale = body.HrScale ?? Automatic1111Defaults.HrScale;
        var resizeX = body.HrResizeX ?? 0;
        var resizeY = body.HrResizeY ?? 0;
        var strength = body.DenoisingStrength ?? Automatic1111Defaults.DenoisingStrength;
        if (!double.IsFinite(scale) || scale <= 0)
        {
            errors.Add(Field("hr_scale", "hr_scale must be a number above 0 (2 doubles the size)."));
        }

        if (resizeX < 0 || resizeY < 0)
        {
            errors.Add(Field(resizeX < 0 ? "hr_resize_x" : "hr_resize_y", "hr_resize_x and hr_resize_y are pixels, or 0 to use hr_scale."));
        }

        var steps = job.Steps ?? Automatic1111Defaults.Steps;
        if (body.HrSampler() is { } hrSampler && Automatic1111Samplers.Resolve(hrSampler, body.Scheduler, out _) != job.Sampler)
        {
            errors.Add(Field("hr_sampler_name", "the farm's hires pass uses the first pass's sampler; leave hr_sampler_name out."));
        }

        if (!string.IsNullOrEmpty(body.HrPrompt) && body.HrPrompt != body.Prompt)
        {
            errors.Add(Field("hr_prompt", "the farm's hires pass uses the first pass's prompt; leave hr_prompt out."));
        }

        if (!string.IsNullOrEmpty(body.HrNegativePrompt) && body.HrNegativePrompt != body.NegativePrompt)
        {
            errors.Add(Field("hr_negative_prompt", "the farm's hires pass uses the first pass's negative prompt; leave hr_negative_prompt out."));
        }

        if (body.HrCheckpointName is { } hrModel && !NoneValues.Contains(hrModel, StringComparer.OrdinalIgnoreCase)
            && Automatic1111Checkpoint.ModelName(hrModel) != job.Model)
        {
            errors.Add(Field("hr_checkpoint_name", "the farm's hires pass uses the first pass's model; leave hr_checkpoint_name out."));
        }

        if (images > MaxHiresImages)
        {
            errors.Add(Field("batch_size", $"batch_size × n_iter is {images}; with enable_hr this farm renders at most {MaxHiresImages} images per call (one hires job each)."));
        }

        understood = understood with { DenoisingStrength = strength, HrScale = scale, HrResizeX = resizeX, HrResizeY = resizeY, HrSecondPassSteps = steps };
        if (errors.Count > 0)
        {
            return ([], understood);
        }

        var width = job.Width ?? Automatic1111Defaults.Width;
        var height = job.Height ?? Automatic1111Defaults.Height;
        var (targetWidth, targetHeight) = Target(width, height, scale, resizeX, resizeY);
        var longest = Math.Max(targetWidth, targetHeight);
        var hiresJob = job with
        {
            Mode = RenderModes.Hires,
            Width = targetWidth,
            Height = targetHeight,
            BaseWidth = width,
            BaseHeight = height,
            Strength = strength,
            Tile = longest is >= HiresLimits.MinTile and <= HiresLimits.MaxTile ? longest : null,
            Count = null,
        };

        // Consecutive seeds need a base seed now; the job API would draw one per job.
        var first = job.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue - images);
        return ([.. Enumerable.Range(0, images).Select(i => hiresJob with { Seed = first + i })], understood);
    }

    private static string? HrSampler(this Txt2ImgBody body) =>
        body.HrSamplerName is { } name && !NoneValues.Contains(name, StringComparer.OrdinalIgnoreCase) ? name : null;

    /// <summary>A1111's upscale target, rounded down to multiples of 8 (the farm's sizes are whole latent cells).</summary>
    internal static (int Width, int Height) Target(int width, int height, double scale, int resizeX, int resizeY)
    {
        long w, h;
        if (resizeX == 0 && resizeY == 0)
        {
            w = (long)(width * scale);
            h = (long)(height * scale);
        }
        else if (resizeY == 0)
        {
            w = resizeX;
            h = height <= 0 ? 0 : (long)resizeX * height / Math.Max(width, 1);
        }
        else if (resizeX == 0)
        {
            w = width <= 0 ? 0 : (long)resizeY * width / Math.Max(height, 1);
            h = resizeY;
        }
        else
        {
            w = resizeX;
            h = resizeY;
        }

        static int Round(long v) => (int)Math.Clamp(v / 8 * 8, 0, int.MaxValue);
        return (Round(w), Round(h));
    }
}
