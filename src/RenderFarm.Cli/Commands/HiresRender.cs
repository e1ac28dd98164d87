using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Upscaling;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.Tiling;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Cli.Commands;

/// <summary>
/// <c>renderfarm render</c> for images larger than one txt2img (or with <c>--hires</c>): a base render at the model's
/// native size, refined tile by tile and streamed into the PNG, on this machine.
/// </summary>
internal static class HiresRender
{
    /// <summary>The hires flags as parsed; null means "use the default".</summary>
    internal sealed record Settings(bool Hires, int? Tile, int? Overlap, int? BaseWidth, int? BaseHeight, double? Strength, string? Upscaler = null)
    {
        public bool AnyGiven => Hires || Tile is not null || Overlap is not null || BaseWidth is not null || BaseHeight is not null || Upscaler is not null;
    }

    internal sealed record OptionSet(Option<bool> Hires, Option<int?> Tile, Option<int?> Overlap, Option<int?> BaseWidth, Option<int?> BaseHeight, Option<string?> Upscaler)
    {
        /// <summary>Reads the flags; <c>--strength</c> counts only when given, since the hires default (0.35) differs from img2img's.</summary>
        public Settings Read(ParseResult result, Option<double> strength) => new(
            result.GetValue(Hires), result.GetValue(Tile), result.GetValue(Overlap), result.GetValue(BaseWidth), result.GetValue(BaseHeight),
            result.GetResult(strength) is { Implicit: false } ? result.GetValue(strength) : null, result.GetValue(Upscaler));
    }

    public static OptionSet CreateOptions() => new(
        new Option<bool>("--hires") { Description = "Render large: a base image at the model's native size refined in overlapping tiles (automatic above the txt2img pixel limit)." },
        new Option<int?>("--tile") { Description = "Hires tile side in pixels, a multiple of 8 (default: the model's native side, 512 for SD 1.x, 768 for v-prediction models such as SD 2.x 768-v, 1024 for SDXL)." },
        new Option<int?>("--overlap") { Description = "Hires least tile overlap in pixels, a multiple of 8 (default: an eighth of the model's native side, 64 for SD 1.x, at most half the tile)." },
        new Option<int?>("--base-width") { Description = "Hires base render width (default: the model's native area, e.g. ~512² for SD 1.x, at the target's aspect ratio)." },
        new Option<int?>("--base-height") { Description = "Hires base render height." },
        new Option<string?>("--upscaler")
        {
            Description = "Hires: a super-resolution model folder (ONNX, Real-ESRGAN-style, with renderfarm-upscaler.json giving its scale) that upscales the base under each tile instead of Mitchell resampling; see `renderfarm models generate --kind tiny-upscaler`.",
        });

    /// <summary>True when the request must (size over the txt2img limit) or asks to (any hires flag) go through hires.</summary>
    public static bool Applies(RenderCommand.Options o) =>
        o.Hires.AnyGiven || (long)o.Width * o.Height > ValidationLimits.Default.MaxPixels;

    public static async Task<int> RunAsync(ParseResult result, RenderCommand.Options o, CancellationToken cancellationToken)
    {
        var seed = o.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        // The tile, overlap and base default to the model's own size (a folder that cannot be opened is reported below).
        var spec = new HiresSpec(o.Width, o.Height, o.Hires.Tile, o.Hires.Overlap, o.Hires.Strength, o.Hires.BaseWidth, o.Hires.BaseHeight,
            RenderCommand.DefaultSide(o.Model));
        var errors = Validate(o, spec, seed);
        if (errors.Count > 0)
        {
            foreach (var error in errors)
            {
                result.Error().WriteLine($"error: {error.Field}: {error.Message}");
            }

            return ExitCodes.InvalidInput;
        }

        try
        {
            var hires = HiresRequestRules.Resolve(spec);
            var grid = hires.CreateGrid();
            var baseImage = o.Init is null ? null : RenderCommand.LoadImage(o.Init, "--init");
            var modelDirectory = ModelLocator.Resolve(o.Model);
            var execution = new ExecutionOptions { IntraOpThreads = o.Threads, Provider = o.Provider };
            using var upscaler = o.Hires.Upscaler is { } upscalerDirectory ? new Upscaler(UpscalerFolder.Open(upscalerDirectory), execution) : null;
            using var pipeline = StableDiffusionPipeline.Open(modelDirectory, execution);
            var engine = new HiresPipeline(pipeline, upscaler is null ? null : new ModelBaseUpscaler(upscaler));
            var settings = new RefineSettings
            {
                Steps = o.Steps,
                GuidanceScale = o.Guidance,
                Sampler = o.Sampler,
                Strength = hires.Strength,
                NegativePrompt = o.Negative ?? "",
            };
            var tileSteps = Math.Clamp((int)(o.Steps * hires.Strength), 1, o.Steps);
            var totalSteps = o.Count * ((baseImage is null ? o.Steps : 0) + grid.Tiles.Count * tileSteps);
            var clock = Stopwatch.StartNew();
            var written = new List<string>();
            await RenderCommand.WithProgressAsync(result, totalSteps, async advance =>
            {
                for (var i = 0; i < o.Count; i++)
                {
                    var imageSeed = seed + i;
                    var request = new HiresRequest
                    {
                        Layout = HiresLayouts.FromGrid(grid, imageSeed, o.Prompt),
                        Prompt = o.Prompt,
                        Seed = (ulong)imageSeed,
                        BaseWidth = hires.BaseWidth,
                        BaseHeight = hires.BaseHeight,
                        BaseImage = baseImage,
                        Settings = settings,
                        Upscaler = upscaler?.Name,
                    };
                    var path = RenderCommand.OutputPath(o.Output, i, o.Count);
                    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                    // Streamed into a side file and renamed when complete: a cancelled render leaves no truncated PNG.
                    var partial = path + ".partial";
                    try
                    {
                        await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                        {
                            var rendered = await engine.RenderAsync(request, file, new StepAdvance(advance), cancellationToken);
                            foreach (var truncation in rendered.Truncations)
                            {
                                result.Error().WriteLine(
                                    $"warning: the {(truncation.Negative ? "negative prompt" : "prompt")} is longer than CLIP's 77 tokens; dropped: \"{truncation.DroppedText}\"");
                            }
                        }

                        File.Move(partial, path, overwrite: true);
                    }
                    finally
                    {
                        File.Delete(partial);
                    }

                    written.Add(path);
                }
            });

            var seconds = clock.Elapsed.TotalSeconds;
            foreach (var path in written)
            {
                result.Out().WriteLine(Path.GetFullPath(path));
            }

            result.Out().WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{written.Count} image(s), {o.Width}x{o.Height} hires from a {(baseImage is null ? $"{hires.BaseWidth}x{hires.BaseHeight}" : $"{baseImage.Width}x{baseImage.Height} init")} base, " +
                $"{grid.Tiles.Count} tiles of {hires.Tile} (overlap {hires.Overlap}) at strength {hires.Strength}, {o.Steps} steps of {o.Sampler}, seed {seed}, " +
                $"model {pipeline.Model.Name}{(upscaler is null ? "" : $", upscaler {upscaler.Name} (x{upscaler.Scale})")}, {seconds:0.00} s on {pipeline.Unet.Component.Provider}"));
            return ExitCodes.Success;
        }
        catch (OperationCanceledException)
        {
            return result.Fail(ExitCodes.Failure, "canceled.");
        }
        catch (Exception ex) when (ConsoleOutput.IsInvalidInput(ex))
        {
            return result.Fail(ExitCodes.InvalidInput, ex.Message);
        }
    }

    private static List<ValidationError> Validate(RenderCommand.Options o, HiresSpec spec, long seed)
    {
        // The common rules (prompt, steps, sampler, guidance, seed, count) through the one validator, with the size it
        // checks being the base render's; the target size and tiling are the hires rules' business.
        var errors = new List<ValidationError>();
        if (o.Mode is not (RenderModes.Txt2Img or RenderModes.Img2Img))
        {
            errors.Add(new("mode", $"hires renders txt2img (the base is rendered first) or img2img (--init is the base); {o.Mode} is not supported."));
        }

        var (baseWidth, baseHeight) = spec.BaseWidth is { } w && spec.BaseHeight is { } h ? (w, h) : spec.Width > 0 && spec.Height > 0 ? HiresRequestRules.DefaultBaseSize(spec.Width, spec.Height, spec.ModelSide) : (spec.ModelSide, spec.ModelSide);
        errors.AddRange(new JobRequestValidator().Validate(new JobRequest
        {
            Prompt = o.Prompt,
            NegativePrompt = o.Negative,
            Width = baseWidth,
            Height = baseHeight,
            Steps = o.Steps,
            GuidanceScale = o.Guidance,
            Sampler = o.Sampler,
            Seed = seed,
            Count = o.Count,
            Mode = o.Mode == RenderModes.Img2Img ? RenderModes.Img2Img : RenderModes.Txt2Img,
            InitImage = o.Mode == RenderModes.Img2Img ? o.Init : null,
        }).Where(e => e.Field is not ("width" or "height")));
        errors.AddRange(HiresRequestRules.Validate(spec));
        if (o.Mask is not null)
        {
            errors.Add(new("mask", "hires does not inpaint; remove --mask."));
        }

        return errors;
    }

    /// <summary>Advances the progress bar once per denoising step (base and tiles).</summary>
    private sealed class StepAdvance(Action advance) : IProgress<HiresProgress>
    {
        public void Report(HiresProgress value)
        {
            if (value.TotalSteps > 0)
            {
                advance();
            }
        }
    }
}
