using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Safety;
using RenderFarm.Domain.Requests;
using Spectre.Console;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm render PROMPT</c>: one machine, no services — the engine driven directly.</summary>
internal static class RenderCommand
{
    public static Command Create()
    {
        var prompt = new Argument<string>("prompt") { Description = "What to render." };
        var negative = new Option<string?>("--negative") { Description = "Negative prompt: what the image should avoid." };
        var model = new Option<string?>("--model") { Description = "Model folder in the diffusers ONNX layout (default: the generated tiny model)." };
        var output = new Option<string>("--output", "-o") { Description = "Output PNG; with --count > 1, -0, -1, … are added before the extension.", DefaultValueFactory = _ => "out.png" };
        var seed = new Option<long?>("--seed") { Description = "Seed of the first image (image i uses seed + i). Random when omitted." };
        var steps = new Option<int>("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 20 };
        var sampler = new Option<string>("--sampler") { Description = "ddim, plms, euler, euler_a, lms, dpmpp_2m, dpmpp_2m_karras or lcm.", DefaultValueFactory = _ => "euler_a" };
        var guidance = new Option<double>("--guidance") { Description = "Classifier-free guidance scale (1 disables guidance).", DefaultValueFactory = _ => 7.5 };
        var width = new Option<int?>("--width") { Description = "Width in pixels, a multiple of 8 (default: the model's training size, 768 for v-prediction models such as SD 2.x 768-v, else 512)." };
        var height = new Option<int?>("--height") { Description = "Height in pixels, a multiple of 8 (default as --width)." };
        var count = new Option<int>("--count") { Description = "Number of images.", DefaultValueFactory = _ => 1 };
        var batch = new Option<int>("--batch") { Description = "Images denoised together in one UNet call.", DefaultValueFactory = _ => 1 };
        var mode = new Option<string>("--mode") { Description = "txt2img, img2img or inpaint.", DefaultValueFactory = _ => RenderModes.Txt2Img };
        var init = new Option<string?>("--init") { Description = "Init image (img2img, inpaint)." };
        var mask = new Option<string?>("--mask") { Description = "Mask image for inpaint: white is repainted." };
        var strength = new Option<double>("--strength") { Description = "img2img/inpaint strength in (0, 1].", DefaultValueFactory = _ => 0.75 };
        var threads = new Option<int>("--threads") { Description = "Inference threads (0 = all cores).", DefaultValueFactory = _ => 0 };
        var provider = new Option<ExecutionProviderPreference>("--provider") { Description = "Auto (CUDA when available), Cpu or Cuda.", DefaultValueFactory = _ => ExecutionProviderPreference.Auto };
        var safety = new Option<string?>("--safety")
        {
            Description = "What the model's safety checker (safety_checker/model.onnx) does: off, flag (record the verdict in the PNG; the default when the model has one), blur or block (a flagged image is not written).",
        };
        safety.AcceptOnlyFromAmong([.. SafetyModes.Names]);
        var watermark = new Option<string?>("--watermark")
        {
            Description = "Embed an invisible watermark carrying TEXT (1 to 32 UTF-8 bytes; Stable Diffusion's scripts use StableDiffusionV1) in every image, as invisible-watermark's dwtDct does; images must be at least 256x256. `renderfarm watermark decode IMG` reads it.",
        };
        var hires = HiresRender.CreateOptions();

        var command = new Command("render", "Render images on this machine with the engine (no farm, no services).")
        {
            prompt, negative, model, output, seed, steps, sampler, guidance, width, height, count, batch, mode, init, mask, strength, threads, provider, safety, watermark,
            hires.Hires, hires.Tile, hires.Overlap, hires.BaseWidth, hires.BaseHeight, hires.Upscaler,
        };

        command.SetAction((result, cancellationToken) =>
        {
            // The model folder is read for its size only when a side is missing, and once for both.
            var side = result.GetValue(width) is null || result.GetValue(height) is null ? DefaultSide(result.GetValue(model)) : 0;
            return RunAsync(result, new Options(
                result.GetRequiredValue(prompt), result.GetValue(negative), result.GetValue(model), result.GetRequiredValue(output),
                result.GetValue(seed), result.GetValue(steps), result.GetRequiredValue(sampler), result.GetValue(guidance),
                result.GetValue(width) ?? side, result.GetValue(height) ?? side, result.GetValue(count), result.GetValue(batch), result.GetRequiredValue(mode),
                result.GetValue(init), result.GetValue(mask), result.GetValue(strength), result.GetValue(threads), result.GetValue(provider),
                hires.Read(result, strength), result.GetValue(safety), result.GetValue(watermark)), cancellationToken);
        });
        return command;
    }

    internal sealed record Options(
        string Prompt, string? Negative, string? Model, string Output, long? Seed, int Steps, string Sampler, double Guidance,
        int Width, int Height, int Count, int Batch, string Mode, string? Init, string? Mask, double Strength, int Threads,
        ExecutionProviderPreference Provider, HiresRender.Settings Hires, string? Safety = null, string? Watermark = null);

    private static async Task<int> RunAsync(ParseResult result, Options o, CancellationToken cancellationToken)
    {
        if (HiresRender.Applies(o))
        {
            return o.Safety is not null
                ? result.Fail(ExitCodes.InvalidInput, "safety: --safety is not supported by hires renders yet (they do not run the safety checker).")
                : o.Watermark is not null
                ? result.Fail(ExitCodes.InvalidInput, "watermark: --watermark is not supported by hires renders yet (they do not embed one).")
                : await HiresRender.RunAsync(result, o, cancellationToken);
        }

        var seed = o.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        var errors = new JobRequestValidator().Validate(new JobRequest
        {
            Prompt = o.Prompt,
            NegativePrompt = o.Negative,
            Width = o.Width,
            Height = o.Height,
            Steps = o.Steps,
            GuidanceScale = o.Guidance,
            Sampler = o.Sampler,
            Seed = seed,
            Count = o.Count,
            Mode = o.Mode,
            InitImage = o.Init,
            Mask = o.Mask,
            Strength = o.Mode == RenderModes.Txt2Img ? null : o.Strength,
        });
        if (o.Batch < 1)
        {
            errors = [.. errors, new ValidationError("batch", "--batch must be at least 1.")];
        }

        var watermark = WatermarkCommand.Payload(o.Watermark, o.Width, o.Height, out var watermarkProblem);
        if (watermarkProblem is not null)
        {
            errors = [.. errors, new ValidationError("watermark", watermarkProblem)];
        }

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
            var request = new GenerationRequest
            {
                Images = [],
                Width = o.Width,
                Height = o.Height,
                Steps = o.Steps,
                GuidanceScale = o.Guidance,
                Sampler = o.Sampler,
                Mode = o.Mode switch
                {
                    RenderModes.Img2Img => GenerationMode.ImageToImage,
                    RenderModes.Inpaint => GenerationMode.Inpaint,
                    _ => GenerationMode.TextToImage,
                },
                InitImage = o.Init is null ? null : LoadImage(o.Init, "--init"),
                Mask = o.Mask is null ? null : LoadImage(o.Mask, "--mask"),
                Strength = o.Strength,
                Safety = SafetyModes.TryParse(o.Safety, out var safetyMode) ? safetyMode : null,
                Watermark = watermark,
            };

            var modelDirectory = ModelLocator.Resolve(o.Model);
            using var pipeline = StableDiffusionPipeline.Open(modelDirectory, new ExecutionOptions { IntraOpThreads = o.Threads, Provider = o.Provider });
            if (request.Safety is { } asked && asked != SafetyMode.Off && pipeline.SafetyChecker is null)
            {
                return result.Fail(ExitCodes.InvalidInput,
                    $"safety: --safety {o.Safety} needs a safety checker, and '{pipeline.Model.Root}' has no safety_checker/model.onnx (`renderfarm models generate --kind tiny-safety DIR` writes a test model with one).");
            }

            var specs = GenerationRequest.Seeds(o.Prompt, o.Negative ?? "", (ulong)seed, o.Count);
            var clock = Stopwatch.StartNew();
            var written = new List<string>();
            var produced = 0;
            await WithProgressAsync(result, o.Count * o.Steps, async advance =>
            {
                foreach (var chunk in specs.Chunk(o.Batch))
                {
                    var generated = await pipeline.GenerateAsync(request with { Images = chunk }, new InlineProgress(advance), cancellationToken);
                    foreach (var truncation in generated.Truncations)
                    {
                        result.Error().WriteLine(
                            $"warning: the {(truncation.Negative ? "negative prompt" : "prompt")} is longer than CLIP's 77 tokens; dropped: \"{truncation.DroppedText}\"");
                    }

                    foreach (var image in generated.Images)
                    {
                        var index = produced++;
                        if (image.Safety is { Blocked: true })
                        {
                            result.Error().WriteLine($"blocked: image {index} (seed {image.Parameters.Seed}) was flagged by the safety checker and not written.");
                            continue;
                        }

                        var path = OutputPath(o.Output, index, o.Count);
                        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                        await File.WriteAllBytesAsync(path, image.ToPng(), cancellationToken);
                        written.Add(path);
                    }
                }
            });

            var seconds = clock.Elapsed.TotalSeconds;
            for (var i = 0; i < written.Count; i++)
            {
                result.Out().WriteLine(Path.GetFullPath(written[i]));
            }

            if (written.Count == 0)
            {
                return result.Fail(ExitCodes.Failure, "every image was blocked by the safety checker; nothing was written.");
            }

            result.Out().WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{written.Count} image(s), {o.Width}x{o.Height}, {o.Steps} steps of {o.Sampler}, seed {seed}, model {pipeline.Model.Name}, " +
                $"{seconds:0.00} s ({seconds / produced:0.00} s/image) on {pipeline.Unet.Component.Provider}"));
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

    // The model's own size where the user named none; a folder that cannot be opened is reported by the render itself.
    internal static int DefaultSide(string? model)
    {
        try
        {
            return ModelFolder.Open(ModelLocator.Resolve(model)).DefaultImageSide;
        }
        catch (Exception ex) when (ex is ModelFormatException or IOException or UnauthorizedAccessException)
        {
            return 512;
        }
    }

    internal static RgbImage LoadImage(string path, string option)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{option}: '{path}' does not exist.");
        }

        try
        {
            return PngCodec.Decode(File.ReadAllBytes(path));
        }
        catch (FormatException ex)
        {
            throw new FormatException($"{option}: '{path}': {ex.Message}", ex);
        }
    }

    internal static string OutputPath(string output, int index, int count) =>
        count == 1
            ? output
            : Path.Combine(Path.GetDirectoryName(output) ?? "", $"{Path.GetFileNameWithoutExtension(output)}-{index}{Path.GetExtension(output)}");

    /// <summary>A progress bar on an interactive terminal; silence when output is captured or redirected.</summary>
    internal static async Task WithProgressAsync(ParseResult result, int totalSteps, Func<Action, Task> work)
    {
        if (result.Out() != Console.Out || Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
        {
            await work(() => { });
            return;
        }

        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask("rendering", maxValue: totalSteps);
                await work(() => task.Increment(1));
            });
    }

    /// <summary>Runs the callback on the rendering thread, unlike <see cref="Progress{T}"/>, which posts and allocates.</summary>
    private sealed class InlineProgress(Action advance) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => advance();
    }
}
