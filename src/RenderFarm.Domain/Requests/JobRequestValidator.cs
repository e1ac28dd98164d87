using System.Globalization;
using RenderFarm.Contracts;
using RenderFarm.Domain.Items;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Domain.Requests;

/// <summary>
/// The one set of rules every job passes before it is accepted, whether it came from the HTTP API, the CLI
/// or a host driving the engine directly. Pure: the host supplies the limits and the models it can serve.
/// </summary>
/// <remarks>
/// Every rule runs (no stopping at the first error) so a client sees all its mistakes at once. Sweep axes are
/// validated entry by entry and the item count is computed arithmetically, so a million-item sweep costs
/// the length of its axes, not the size of its cross product.
/// </remarks>
public sealed class JobRequestValidator
{
    /// <summary>Bad entries reported per sweep axis; past this a summary stands for the rest, so a hostile request cannot make a huge response.</summary>
    public const int MaxErrorsPerAxis = 10;

    private readonly ValidationLimits _limits;
    private readonly IReadOnlySet<string>? _knownModels;
    private readonly int _modelSide;

    /// <param name="limits">Bounds to enforce; null means <see cref="ValidationLimits.Default"/>.</param>
    /// <param name="knownModels">Models the farm can serve; null skips the check (e.g. the CLI before it has asked a coordinator).</param>
    /// <param name="modelSide">
    /// The native side of the model the request renders with, which a hires request's tile, overlap and base default
    /// to (<see cref="HiresSpec.ModelSide"/>); SD 1.x's 512 when the host cannot tell.
    /// </param>
    public JobRequestValidator(ValidationLimits? limits = null, IReadOnlySet<string>? knownModels = null, int modelSide = HiresLimits.DefaultModelSide)
    {
        _limits = limits ?? ValidationLimits.Default;
        _knownModels = knownModels;
        _modelSide = modelSide;
    }

    public ValidationLimits Limits => _limits;

    /// <summary>Checks every rule and returns the broken ones; an empty list means the request is valid.</summary>
    public IReadOnlyList<ValidationError> Validate(JobRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new List<ValidationError>();

        // A sweep axis replaces its single-valued field, so that field is only checked when no axis stands in for it;
        // a client sweeping prompts need not invent a top-level prompt.
        var sweep = request.Sweep;
        if (sweep?.Prompts is null)
        {
            // An upscale job only enlarges its image; a prompt there is no more than the stitched PNG's caption.
            ValidatePrompt(errors, "prompt", request.Prompt, required: request.Mode != RenderModes.Upscale);
        }

        if (sweep?.NegativePrompts is null)
        {
            ValidatePrompt(errors, "negativePrompt", request.NegativePrompt, required: false);
        }

        var hires = RenderModes.IsTiled(request.Mode);
        if (hires)
        {
            // The target is tiled, so only the hires bounds apply to it; the base render is held to the txt2img limit.
            errors.AddRange(HiresRequestRules.Validate(HiresSpecOf(request, _modelSide), _limits.Hires, _limits.MaxPixels));
        }
        else
        {
            if (sweep?.Sizes is null)
            {
                ValidateSize(errors, "", request.Width, request.Height);
            }

            ValidateHiresFieldsAbsent(errors, request);
        }

        if (sweep?.Steps is null)
        {
            ValidateSteps(errors, "steps", request.Steps);
        }

        if (sweep?.GuidanceScales is null)
        {
            ValidateGuidance(errors, "guidanceScale", request.GuidanceScale);
        }

        if (sweep?.Samplers is null)
        {
            ValidateSampler(errors, "sampler", request.Sampler);
        }

        ValidateModel(errors, request.Model);
        ValidateUpscaler(errors, request.Upscaler, hires);
        if (request.Mode == RenderModes.Upscale)
        {
            ValidateUpscaleOnly(errors, request);
        }

        ValidateSeed(errors, "seed", request.Seed);
        ValidateMode(errors, request);
        ValidatePriority(errors, request.Priority);
        var countValid = ValidateCount(errors, request);
        var sweepValid = ValidateSweep(errors, sweep);
        if (hires)
        {
            countValid &= ValidateHiresSingleImage(errors, request);
        }

        if (countValid && sweepValid)
        {
            // A hires job's items are its tiles, bounded by HiresLimits.MaxTiles and seeded by TileDerivation, not seed + i.
            if (!hires)
            {
                ValidateItemTotal(errors, request);
            }

            ValidateLcmSteps(errors, request);
        }

        return errors;
    }

    /// <summary>
    /// An upscale job is a hires job with the client's image as its base and no refinement, so it needs the image and
    /// the upscaler model, and the refinement's and base render's settings have nothing to act on.
    /// </summary>
    private static void ValidateUpscaleOnly(List<ValidationError> errors, JobRequest request)
    {
        if (request.InitImage is null)
        {
            errors.Add(new("initImage", $"initImage is required for mode {RenderModes.Upscale}: upload the image to enlarge and pass its artifact key."));
        }

        if (request.Upscaler is null)
        {
            errors.Add(new("upscaler", $"upscaler is required for mode {RenderModes.Upscale}: name an upscaler model pushed to the farm (renderfarm models push DIR --name NAME)."));
        }

        if (request.Strength is not null)
        {
            errors.Add(new("strength", $"strength is not used by mode {RenderModes.Upscale} (its tiles are only upscaled, not refined); remove it, or use mode {RenderModes.Hires} to refine."));
        }
    }

    /// <summary>The hires fields of a request in the shape <see cref="HiresRequestRules"/> takes.</summary>
    /// <param name="request">The request.</param>
    /// <param name="modelSide">The native side of its model (<see cref="HiresSpec.ModelSide"/>).</param>
    public static HiresSpec HiresSpecOf(JobRequest request, int modelSide = HiresLimits.DefaultModelSide)
    {
        ArgumentNullException.ThrowIfNull(request);
        return new(request.Width, request.Height, request.Tile, request.Overlap, request.Strength, request.BaseWidth, request.BaseHeight, modelSide);
    }

    private static void ValidateHiresFieldsAbsent(List<ValidationError> errors, JobRequest request)
    {
        foreach (var (field, given) in new[]
        {
            ("tile", request.Tile is not null),
            ("overlap", request.Overlap is not null),
            ("baseWidth", request.BaseWidth is not null),
            ("baseHeight", request.BaseHeight is not null),
        })
        {
            if (given)
            {
                errors.Add(new(field, $"{field} is only used by mode {RenderModes.Hires}; remove it or set mode to {RenderModes.Hires}."));
            }
        }
    }

    /// <summary>A hires job is one large image: its items are tiles, so count and sweeps (many images) do not apply.</summary>
    private static bool ValidateHiresSingleImage(List<ValidationError> errors, JobRequest request)
    {
        var ok = true;
        if (request.Count is > 1)
        {
            errors.Add(new("count", $"count is {request.Count}, but a {RenderModes.Hires} job renders one large image; submit one job per image (each with its own seed)."));
            ok = false;
        }

        if (request.Sweep is not null)
        {
            errors.Add(new("sweep", $"sweeps are not available for mode {RenderModes.Hires} (one large image per job); submit one job per combination."));
            ok = false;
        }

        if (request.InitImage is not null && (request.BaseWidth is not null || request.BaseHeight is not null))
        {
            // The init image is the base, at its own size; a second base size would be silently ignored.
            errors.Add(new(request.BaseWidth is not null ? "baseWidth" : "baseHeight",
                "baseWidth and baseHeight size a rendered base; with initImage the image itself is the base, so remove them (or the init image)."));
        }

        return ok;
    }

    /// <summary>A combination the engine would refuse: LCM with more steps than its distillation schedule has.</summary>
    private static void ValidateLcmSteps(List<ValidationError> errors, JobRequest request)
    {
        var samplers = request.Sweep?.Samplers ?? [request.Sampler];
        var steps = request.Sweep?.Steps ?? [request.Steps];
        if (samplers.Contains(KnownSamplers.Lcm) && steps.Any(s => s > KnownSamplers.LcmMaxSteps))
        {
            var field = request.Sweep?.Steps is null ? "steps" : "sweep.steps";
            errors.Add(new(field,
                $"{field}: the lcm sampler takes at most {KnownSamplers.LcmMaxSteps} steps (its distillation schedule; 4 to 8 is typical); use fewer steps or another sampler."));
        }
    }

    /// <summary>True when <see cref="Validate"/> finds nothing wrong.</summary>
    public bool IsValid(JobRequest request) => Validate(request).Count == 0;

    private void ValidatePrompt(List<ValidationError> errors, string field, string? prompt, bool required)
    {
        if (prompt is null || string.IsNullOrWhiteSpace(prompt))
        {
            if (required)
            {
                errors.Add(new(field, $"{field} is required: describe the image to render."));
            }
            else if (prompt is not null && prompt.Length > 0)
            {
                errors.Add(new(field, $"{field} is only whitespace: remove it or write what the image should avoid."));
            }

            return;
        }

        if (prompt.Length > _limits.MaxPromptLength)
        {
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"{field} is {prompt.Length} characters long; shorten it to at most {_limits.MaxPromptLength} characters (the text encoder reads only the first 77 tokens anyway).")));
        }
    }

    /// <param name="errors">Where broken rules go.</param>
    /// <param name="prefix">Field prefix: "" for the request's own size, <c>sweep.sizes[i].</c> for a sweep entry.</param>
    /// <param name="width">Pixels.</param>
    /// <param name="height">Pixels.</param>
    private void ValidateSize(List<ValidationError> errors, string prefix, int width, int height)
    {
        var widthOk = ValidateDimension(errors, prefix + "width", width);
        var heightOk = ValidateDimension(errors, prefix + "height", height);
        if (!widthOk || !heightOk)
        {
            return;
        }

        var pixels = (long)width * height;
        if (pixels > _limits.MaxPixels)
        {
            errors.Add(new(prefix + "width", string.Create(CultureInfo.InvariantCulture,
                $"width × height is {width}×{height} = {pixels} pixels, over the limit of {_limits.MaxPixels}; reduce width or height (e.g. {MaxSquareSide()}×{MaxSquareSide()}).")));
        }
    }

    private int MaxSquareSide()
    {
        var side = (long)Math.Sqrt(_limits.MaxPixels);
        return (int)Math.Max(ValidationLimits.MinDimension, side / ValidationLimits.DimensionMultiple * ValidationLimits.DimensionMultiple);
    }

    private static bool ValidateDimension(List<ValidationError> errors, string field, int value)
    {
        if (value < ValidationLimits.MinDimension)
        {
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"{field} is {value}; use at least {ValidationLimits.MinDimension} pixels.")));
            return false;
        }

        if (value % ValidationLimits.DimensionMultiple != 0)
        {
            var down = value / ValidationLimits.DimensionMultiple * ValidationLimits.DimensionMultiple;
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"{field} is {value}, not a multiple of {ValidationLimits.DimensionMultiple}; use {down} or {down + ValidationLimits.DimensionMultiple}.")));
            return false;
        }

        return true;
    }

    private static void ValidateSteps(List<ValidationError> errors, string field, int steps)
    {
        if (steps is < ValidationLimits.MinSteps or > ValidationLimits.MaxSteps)
        {
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"{field} is {steps}; use between {ValidationLimits.MinSteps} and {ValidationLimits.MaxSteps} (20–50 is typical).")));
        }
    }

    private static void ValidateGuidance(List<ValidationError> errors, string field, double guidance)
    {
        if (!double.IsFinite(guidance))
        {
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"{field} is not a finite number; use a value between {ValidationLimits.MinGuidanceScale} and {ValidationLimits.MaxGuidanceScale} (7.5 is typical).")));
        }
        else if (guidance is < ValidationLimits.MinGuidanceScale or > ValidationLimits.MaxGuidanceScale)
        {
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"{field} is {guidance}; use a value between {ValidationLimits.MinGuidanceScale} and {ValidationLimits.MaxGuidanceScale} (7.5 is typical; above ~30 images burn out).")));
        }
    }

    private static void ValidateSampler(List<ValidationError> errors, string field, string? sampler)
    {
        if (!KnownSamplers.Contains(sampler))
        {
            errors.Add(new(field, $"{field} '{sampler}' is not a known sampler; use one of: {string.Join(", ", KnownSamplers.All)}."));
        }
    }

    private void ValidateModel(List<ValidationError> errors, string? model)
    {
        if (model is null)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(model))
        {
            errors.Add(new("model", "model is empty; name a model or leave the field out to use the default model."));
        }
        else if (_knownModels is not null && !_knownModels.Contains(model))
        {
            var known = _knownModels.Count == 0 ? "(none installed)" : string.Join(", ", _knownModels.Order(StringComparer.Ordinal));
            errors.Add(new("model", $"model '{model}' is not available; use one of: {known}, or leave the field out to use the default model."));
        }
    }

    private void ValidateUpscaler(List<ValidationError> errors, string? upscaler, bool hires)
    {
        if (upscaler is null)
        {
            return;
        }

        if (!hires)
        {
            errors.Add(new("upscaler", $"upscaler is only used by mode {RenderModes.Hires} (it upscales the base under each tile); remove it or set mode to {RenderModes.Hires}."));
        }
        else if (string.IsNullOrWhiteSpace(upscaler))
        {
            errors.Add(new("upscaler", "upscaler is empty; name an upscaler model, or leave the field out for Mitchell resampling."));
        }
        else if (_knownModels is not null && !_knownModels.Contains(upscaler))
        {
            errors.Add(new("upscaler", $"upscaler '{upscaler}' is not available; push its folder to the farm (renderfarm models push DIR --name {upscaler}) or leave the field out for Mitchell resampling."));
        }
    }

    private static void ValidateSeed(List<ValidationError> errors, string field, long? seed)
    {
        if (seed is < 0)
        {
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"{field} is {seed}; use a seed between 0 and {ValidationLimits.MaxSeed}, or leave it out for a random one.")));
        }
        else if (seed > ValidationLimits.MaxSeed)
        {
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"{field} is {seed}, larger than JSON clients can carry exactly; use a seed between 0 and {ValidationLimits.MaxSeed}.")));
        }
    }

    private static void ValidateStrength(List<ValidationError> errors, string field, double strength)
    {
        if (!(double.IsFinite(strength) && strength > 0 && strength <= 1))
        {
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"{field} is {strength}; use a value greater than 0 and at most 1 (0.8 keeps the composition; 1 replaces the image entirely).")));
        }
    }

    private static void ValidateMode(List<ValidationError> errors, JobRequest request)
    {
        var mode = request.Mode ?? GenerationDefaults.Mode;
        if (!RenderModes.All.Contains(mode, StringComparer.Ordinal))
        {
            errors.Add(new("mode", $"mode '{mode}' is not known; use one of: {string.Join(", ", RenderModes.All)}."));
            return;
        }

        var usesInitImage = mode is RenderModes.Img2Img or RenderModes.Inpaint;
        if (RenderModes.IsTiled(mode))
        {
            // initImage is optional (it replaces the base render) and strength is the tiles' refinement strength,
            // which HiresRequestRules checks with the hires advice.
            if (request.InitImage is not null && string.IsNullOrWhiteSpace(request.InitImage))
            {
                errors.Add(new("initImage", mode == RenderModes.Upscale
                    ? "initImage is empty; pass the artifact key of the image to enlarge."
                    : "initImage is empty; pass the base image's artifact key, or leave it out to render the base."));
            }
        }
        else if (usesInitImage)
        {
            if (string.IsNullOrWhiteSpace(request.InitImage))
            {
                errors.Add(new("initImage", $"initImage is required for mode {mode}; upload the image and pass its artifact key."));
            }

            if (request.Sweep?.Strengths is null && request.Strength is { } strength)
            {
                ValidateStrength(errors, "strength", strength);
            }
        }
        else
        {
            if (request.InitImage is not null)
            {
                errors.Add(new("initImage", $"initImage is only used by {RenderModes.Img2Img}, {RenderModes.Inpaint} and {RenderModes.Hires}; remove it or set mode."));
            }

            if (request.Strength is not null)
            {
                errors.Add(new("strength", $"strength is only used by {RenderModes.Img2Img}, {RenderModes.Inpaint} and {RenderModes.Hires}; remove it or set mode."));
            }

            if (request.Sweep?.Strengths is not null)
            {
                errors.Add(new("sweep.strengths", $"sweep.strengths is only used by {RenderModes.Img2Img} and {RenderModes.Inpaint}; remove it or set mode."));
            }
        }

        // An init image fixes its job's size (and a hires job is one image), so only txt2img sweeps over sizes.
        if (mode != RenderModes.Txt2Img && request.Sweep?.Sizes is not null)
        {
            errors.Add(new("sweep.sizes", $"sweep.sizes is only used by {RenderModes.Txt2Img} (an init image fixes the size of the others); remove it or submit one job per size."));
        }

        if (mode == RenderModes.Inpaint)
        {
            if (string.IsNullOrWhiteSpace(request.Mask))
            {
                errors.Add(new("mask", "mask is required for mode inpaint; upload a mask (white = repaint) and pass its artifact key."));
            }
        }
        else if (request.Mask is not null)
        {
            errors.Add(new("mask", $"mask is only used by {RenderModes.Inpaint}; remove it or set mode to {RenderModes.Inpaint}."));
        }
    }

    private static void ValidatePriority(List<ValidationError> errors, int? priority)
    {
        if (priority is < ValidationLimits.MinPriority or > ValidationLimits.MaxPriority)
        {
            errors.Add(new("priority", string.Create(CultureInfo.InvariantCulture,
                $"priority is {priority}; use a value between {ValidationLimits.MinPriority} and {ValidationLimits.MaxPriority}.")));
        }
    }

    private bool ValidateCount(List<ValidationError> errors, JobRequest request)
    {
        if (request.Count is not { } count)
        {
            return true;
        }

        if (count < 1)
        {
            errors.Add(new("count", string.Create(CultureInfo.InvariantCulture,
                $"count is {count}; use at least 1, or leave it out for one image.")));
            return false;
        }

        if (count > _limits.MaxCount)
        {
            errors.Add(new("count", string.Create(CultureInfo.InvariantCulture,
                $"count is {count}, over the limit of {_limits.MaxCount}; lower it, or use a sweep over seeds for larger batches.")));
            return false;
        }

        if (count > 1 && request.Sweep?.Seeds is not null)
        {
            // Explicit seeds make every repetition byte-identical, so a count on top would only render duplicates.
            errors.Add(new("count", "count cannot be combined with sweep.seeds (each repeat would render the same image); remove count or list more seeds."));
            return false;
        }

        return true;
    }

    private bool ValidateSweep(List<ValidationError> errors, SweepRequest? sweep)
    {
        if (sweep is null)
        {
            return true;
        }

        var before = errors.Count;
        ValidateAxis(errors, "sweep.prompts", sweep.Prompts, (field, p) => ValidatePrompt(errors, field, p, required: true));
        ValidateAxis(errors, "sweep.seeds", sweep.Seeds, (field, s) => ValidateSeed(errors, field, s));
        ValidateAxis(errors, "sweep.guidanceScales", sweep.GuidanceScales, (field, g) => ValidateGuidance(errors, field, g));
        ValidateAxis(errors, "sweep.steps", sweep.Steps, (field, s) => ValidateSteps(errors, field, s));
        ValidateAxis(errors, "sweep.samplers", sweep.Samplers, (field, s) => ValidateSampler(errors, field, s));
        ValidateAxis(errors, "sweep.negativePrompts", sweep.NegativePrompts, (field, p) => ValidatePrompt(errors, field, p, required: false));
        ValidateAxis(errors, "sweep.strengths", sweep.Strengths, (field, s) => ValidateStrength(errors, field, s));
        ValidateAxis(errors, "sweep.sizes", sweep.Sizes, (field, size) =>
        {
            if (size is null)
            {
                errors.Add(new(field, $"{field} is null; give each size as {{\"width\": W, \"height\": H}}."));
                return;
            }

            ValidateSize(errors, field + ".", size.Width, size.Height);
        });
        return errors.Count == before;
    }

    private static void ValidateAxis<T>(List<ValidationError> errors, string field, IReadOnlyList<T>? values, Action<string, T> validateEntry)
    {
        if (values is null)
        {
            return;
        }

        if (values.Count == 0)
        {
            errors.Add(new(field, $"{field} is empty, which would render nothing; list at least one value or leave the field out."));
            return;
        }

        var bad = 0;
        for (var i = 0; i < values.Count; i++)
        {
            var before = errors.Count;
            validateEntry(string.Create(CultureInfo.InvariantCulture, $"{field}[{i}]"), values[i]);
            if (errors.Count == before)
            {
                continue;
            }

            bad++;
            if (bad == MaxErrorsPerAxis)
            {
                errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                    $"{field} has more bad entries after index {i}; fix the ones listed and check the rest the same way.")));
                return;
            }
        }
    }

    private void ValidateItemTotal(List<ValidationError> errors, JobRequest request)
    {
        var total = SweepExpansion.CountItems(request);
        var field = request.Sweep is null ? "count" : "sweep";
        if (total > _limits.MaxSweepItems)
        {
            errors.Add(new(field, string.Create(CultureInfo.InvariantCulture,
                $"the job expands into {(total == long.MaxValue ? "more than 2^63" : total.ToString(CultureInfo.InvariantCulture))} items, over the limit of {_limits.MaxSweepItems}; shorten the sweep axes (or count) or split the job.")));
            return;
        }

        // Implicit seeds run from seed to seed + total − 1; the last one must still be a valid seed.
        if (request.Sweep?.Seeds is null && request.Seed is { } seed and >= 0 and <= ValidationLimits.MaxSeed
            && seed > SweepExpansion.MaxBaseSeed(total))
        {
            errors.Add(new("seed", string.Create(CultureInfo.InvariantCulture,
                $"seed {seed} plus {total} items passes the largest seed {ValidationLimits.MaxSeed}; use a seed of at most {SweepExpansion.MaxBaseSeed(total)}.")));
        }
    }
}
