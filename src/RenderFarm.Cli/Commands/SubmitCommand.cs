using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RenderFarm.Client;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm submit</c>: a job to the farm, from options (the API's fields) or a JSON file.</summary>
internal static class SubmitCommand
{
    public const int DefaultSize = 512;
    public const int DefaultSteps = 20;
    public const double DefaultGuidance = 7.5;
    public const string DefaultSampler = "euler_a";

    public static Command Create()
    {
        var prompt = new Argument<string?>("prompt") { Description = "What to render (or use --file).", Arity = ArgumentArity.ZeroOrOne };
        var file = new Option<string?>("--file", "-f") { Description = "JSON file with a job (the body of POST /v1/jobs) or an array of jobs; replaces the other job options." };
        var negative = new Option<string?>("--negative") { Description = "Negative prompt: what the image should avoid." };
        var width = new Option<int?>("--width") { Description = $"Width in pixels, a multiple of 8 (default {DefaultSize})." };
        var height = new Option<int?>("--height") { Description = $"Height in pixels, a multiple of 8 (default {DefaultSize})." };
        var steps = new Option<int?>("--steps") { Description = $"Denoising steps (default {DefaultSteps})." };
        var sampler = new Option<string?>("--sampler") { Description = $"ddim, plms, euler, euler_a, lms, dpmpp_2m, dpmpp_2m_karras or lcm (default {DefaultSampler})." };
        var guidance = new Option<double?>("--guidance") { Description = $"Classifier-free guidance scale (default {DefaultGuidance.ToString(CultureInfo.InvariantCulture)})." };
        var seed = new Option<long?>("--seed") { Description = "Seed of the first image (image i uses seed + i); random when omitted." };
        var count = new Option<int?>("--count") { Description = "Images per sweep combination (default 1)." };
        var model = new Option<string?>("--model") { Description = "Model name (default: the farm's default model)." };
        var mode = new Option<string?>("--mode") { Description = "txt2img (default), img2img, inpaint or hires (a large image: a base render refined in tiles spread over the workers, then stitched) or upscale (--init enlarged to --width x --height by --upscaler, in tiles spread over the workers; no prompt)." };
        var init = new Option<string?>("--init") { Description = "Init image file (PNG) for img2img and inpaint; for hires, the base image to upscale instead of rendering one; for upscale, the image to enlarge." };
        var mask = new Option<string?>("--mask") { Description = "Mask image file (PNG, white is repainted) for inpaint." };
        var strength = new Option<double?>("--strength") { Description = "img2img/inpaint strength in (0, 1]; for hires, the tiles' refinement strength (default 0.35)." };
        var tile = new Option<int?>("--tile") { Description = "Hires tile side in pixels, a multiple of 8 (default: the model's native side, 512 for SD 1.x, 768 for SD 2.x 768-v, 1024 for SDXL, when the farm's model store holds the model; else, and for upscale, 512)." };
        var overlap = new Option<int?>("--overlap") { Description = "Hires least overlap between tiles in pixels, a multiple of 8 (default: an eighth of that side, 64 for 512)." };
        var baseWidth = new Option<int?>("--base-width") { Description = "Hires base render width (default: about that side squared, e.g. 512², at the target's aspect ratio)." };
        var baseHeight = new Option<int?>("--base-height") { Description = "Hires base render height (with --base-width)." };
        var upscaler = new Option<string?>("--upscaler") { Description = "Hires: name of a super-resolution model pushed to the farm (renderfarm models push DIR) that upscales the base under each tile (default: Mitchell resampling)." };
        var priority = new Option<int?>("--priority") { Description = "-100..100 (default 0): the farm sends a higher-priority job's work before lower-priority work still waiting (work already sent is not taken back)." };
        var safety = new Option<string?>("--safety") { Description = "The model's safety checker: off, flag (record the verdict), blur or block (store nothing for a flagged image); default flag when the model has a checker. Not for hires." };
        safety.AcceptOnlyFromAmong("off", "flag", "blur", "block");
        var watermark = new Option<string?>("--watermark") { Description = "Embed an invisible watermark carrying TEXT (1 to 32 UTF-8 bytes) in every image, in place of the farm's; images of at least 256x256. Not for hires." };
        var sweepPrompts = new Option<string?>("--sweep-prompts-file") { Description = "Sweep over prompts: a text file with one prompt per line." };
        var sweepSeeds = new Option<string?>("--sweep-seeds") { Description = "Sweep over seeds, e.g. 1,2,3." };
        var sweepGuidance = new Option<string?>("--sweep-guidance") { Description = "Sweep over guidance scales, e.g. 5,7.5,9." };
        var sweepSteps = new Option<string?>("--sweep-steps") { Description = "Sweep over step counts, e.g. 10,20." };
        var sweepSamplers = new Option<string?>("--sweep-samplers") { Description = "Sweep over samplers, e.g. euler_a,ddim." };
        var sweepSizes = new Option<string?>("--sweep-sizes") { Description = "Sweep over image sizes (txt2img), e.g. 512x512,768x512; replaces --width and --height." };
        var outputFormat = new Option<string?>("--output-format") { Description = "files (default: one PNG per image) or webdataset (tar shards datasets/{job}/{shard}.tar of --shard-size samples; export with --format webdataset)." };
        var shardSize = new Option<int?>("--shard-size") { Description = "Samples per WebDataset shard, 1 to 100000 (default 1000); with --output-format webdataset." };
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "Submitting again with the same key returns the same job (safe retries from scripts)." };
        var wait = new Option<bool>("--wait") { Description = "Follow the job until it finishes; exit 0 only when it succeeded." };
        var farm = FarmConnection.CreateOption();

        var command = new Command("submit", "Submit a render job to the farm and print its id.")
        {
            prompt, file, negative, width, height, steps, sampler, guidance, seed, count, model, mode, init, mask, strength, priority, safety, watermark,
            tile, overlap, baseWidth, baseHeight, upscaler, sweepPrompts, sweepSeeds, sweepGuidance, sweepSteps, sweepSamplers, sweepSizes, outputFormat, shardSize, idempotencyKey, wait, farm,
        };

        command.SetAction((result, cancellationToken) =>
        {
            List<SubmitJobRequest> jobs;
            try
            {
                jobs = result.GetValue(file) is { } path
                    ? ReadFile(path, result.GetValue(prompt))
                    : [FromOptions()];
            }
            catch (InvalidInputException ex)
            {
                return Task.FromResult(result.Fail(ExitCodes.InvalidInput, ex.Message));
            }

            return FarmConnection.RunAsync(result, farm, client => SubmitAsync(client, result, jobs, result.GetValue(idempotencyKey), result.GetValue(wait), cancellationToken), cancellationToken);

            SubmitJobRequest FromOptions()
            {
                var sweep = new SweepRequest(
                    ReadLines(result.GetValue(sweepPrompts)),
                    ParseList(result.GetValue(sweepSeeds), "--sweep-seeds", s => long.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture)),
                    ParseList(result.GetValue(sweepGuidance), "--sweep-guidance", s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture)),
                    ParseList(result.GetValue(sweepSteps), "--sweep-steps", s => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture)),
                    ParseList(result.GetValue(sweepSamplers), "--sweep-samplers", s => s),
                    Sizes: ParseList(result.GetValue(sweepSizes), "--sweep-sizes", ParseSize, "512x512,768x512"));
                var hasSweep = sweep.Prompts is not null || sweep.Seeds is not null || sweep.GuidanceScales is not null || sweep.Steps is not null || sweep.Samplers is not null
                    || sweep.Sizes is not null;
                if (sweep.Sizes is not null && (result.GetValue(width) is not null || result.GetValue(height) is not null))
                {
                    throw new InvalidInputException("--sweep-sizes replaces --width and --height; give one or the other.");
                }
                var text = result.GetValue(prompt);
                // An upscale job enlarges an image with no diffusion: no prompt, and no denoising defaults to send.
                var upscale = result.GetValue(mode) == RenderModes.Upscale;
                if (string.IsNullOrWhiteSpace(text) && sweep.Prompts is null && !upscale)
                {
                    throw new InvalidInputException("give a prompt (renderfarm submit \"a red fox\"), --sweep-prompts-file or --file.");
                }

                // Defaults only where no sweep axis supplies the field: the API takes an axis instead of the single value.
                return new SubmitJobRequest(
                    Prompt: text,
                    NegativePrompt: result.GetValue(negative),
                    Width: result.GetValue(width) ?? (sweep.Sizes is null && !upscale ? DefaultSize : null),
                    Height: result.GetValue(height) ?? (sweep.Sizes is null && !upscale ? DefaultSize : null),
                    Steps: result.GetValue(steps) ?? (sweep.Steps is null && !upscale ? DefaultSteps : null),
                    GuidanceScale: result.GetValue(guidance) ?? (sweep.GuidanceScales is null && !upscale ? DefaultGuidance : null),
                    Sampler: result.GetValue(sampler) ?? (sweep.Samplers is null && !upscale ? DefaultSampler : null),
                    Seed: result.GetValue(seed),
                    Count: result.GetValue(count),
                    Model: result.GetValue(model),
                    Mode: result.GetValue(mode),
                    InitImage: ReadImage(result.GetValue(init), "--init"),
                    Mask: ReadImage(result.GetValue(mask), "--mask"),
                    Strength: result.GetValue(strength),
                    Sweep: hasSweep ? sweep : null,
                    Priority: result.GetValue(priority),
                    Tile: result.GetValue(tile),
                    Overlap: result.GetValue(overlap),
                    BaseWidth: result.GetValue(baseWidth),
                    BaseHeight: result.GetValue(baseHeight),
                    Safety: result.GetValue(safety),
                    Watermark: result.GetValue(watermark),
                    Upscaler: result.GetValue(upscaler),
                    // The farm validates both (a 400 naming output.format or output.shardSize).
                    Output: result.GetValue(outputFormat) is null && result.GetValue(shardSize) is null
                        ? null
                        : new JobOutput(result.GetValue(outputFormat) ?? JobOutput.Files, result.GetValue(shardSize)));
            }
        });
        return command;
    }

    private static async Task<int> SubmitAsync(RenderFarmClient client, ParseResult result, List<SubmitJobRequest> jobs, string? idempotencyKey, bool wait, CancellationToken cancellationToken)
    {
        var output = result.Out();
        var submitted = new List<Job>();
        for (var i = 0; i < jobs.Count; i++)
        {
            // Each job of a file gets its own key derived from the given one, so re-running the file is safe too.
            var key = idempotencyKey is null ? null : jobs.Count == 1 ? idempotencyKey : string.Create(CultureInfo.InvariantCulture, $"{idempotencyKey}-{i}");
            var (job, _) = await client.SubmitJobAsync(jobs[i], key, cancellationToken);
            output.WriteLine(job.Id);
            output.Flush();
            submitted.Add(job);
        }

        if (!wait)
        {
            return ExitCodes.Success;
        }

        var exitCode = ExitCodes.Success;
        foreach (var job in submitted)
        {
            var final = await JobWatcher.WatchAsync(client, job.Id, result.Error(), cancellationToken);
            JobWatcher.WriteJob(result.Error(), final);
            if (final.State != JobState.Succeeded)
            {
                exitCode = ExitCodes.Failure;
            }
        }

        return exitCode;
    }

    private static List<SubmitJobRequest> ReadFile(string path, string? prompt)
    {
        if (prompt is not null)
        {
            throw new InvalidInputException("give either a prompt or --file, not both.");
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"cannot read --file '{path}': {ex.Message}");
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.ValueKind switch
            {
                JsonValueKind.Array => document.RootElement.Deserialize<List<SubmitJobRequest>>(RenderFarmClient.Json) ?? [],
                JsonValueKind.Object => [document.RootElement.Deserialize<SubmitJobRequest>(RenderFarmClient.Json)!],
                _ => throw new InvalidInputException($"--file '{path}' must hold a JSON object (one job) or an array of jobs."),
            } is { Count: > 0 } jobs ? jobs : throw new InvalidInputException($"--file '{path}' holds no jobs.");
        }
        catch (JsonException ex)
        {
            throw new InvalidInputException($"--file '{path}' is not valid job JSON: {ex.Message}");
        }
    }

    private static List<string>? ReadLines(string? path)
    {
        if (path is null)
        {
            return null;
        }

        try
        {
            return [.. File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0)];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"cannot read --sweep-prompts-file '{path}': {ex.Message}");
        }
    }

    private static List<T>? ParseList<T>(string? text, string option, Func<string, T> parse, string example = "1,2,3")
    {
        if (text is null)
        {
            return null;
        }

        var values = new List<T>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            try
            {
                values.Add(parse(part));
            }
            catch (Exception ex) when (ex is FormatException or OverflowException)
            {
                throw new InvalidInputException($"{option}: '{part}' is not a valid value; give a comma-separated list such as {example}.");
            }
        }

        return values;
    }

    // "512x768": width × height, as sizes are written on the command line of most image tools.
    private static ImageSize ParseSize(string text)
    {
        var sides = text.Split('x', 'X');
        return sides.Length == 2
            ? new ImageSize(int.Parse(sides[0], NumberStyles.None, CultureInfo.InvariantCulture), int.Parse(sides[1], NumberStyles.None, CultureInfo.InvariantCulture))
            : throw new FormatException();
    }

    private static string? ReadImage(string? path, string option)
    {
        if (path is null)
        {
            return null;
        }

        try
        {
            return Convert.ToBase64String(File.ReadAllBytes(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException($"cannot read {option} '{path}': {ex.Message}");
        }
    }

    private sealed class InvalidInputException(string message) : Exception(message);
}
