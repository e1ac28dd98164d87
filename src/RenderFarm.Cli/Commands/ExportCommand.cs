using System.CommandLine;
using System.Globalization;
using RenderFarm.Cli.Datasets;
using Spectre.Console;

namespace RenderFarm.Cli.Commands;

/// <summary>
/// <c>renderfarm export ID -o DIR [--format files|imagefolder|webdataset] [--parallel N]</c>: a job as a dataset folder,
/// every image checked against the manifest's SHA-256; run again, it fetches only what is missing or damaged.
/// </summary>
internal static class ExportCommand
{
    public const int DefaultParallel = 8;

    /// <summary>Enough to keep a store busy from one machine; more only queues on the farm.</summary>
    public const int MaxParallel = 64;

    /// <summary>Failures listed one per line before the rest are only counted.</summary>
    private const int ListedFailures = 10;

    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The job id that `renderfarm submit` printed." };
        var output = new Option<string>("--output", "-o") { Description = "The dataset folder (created when missing; an earlier export there is resumed).", Required = true };
        var format = new Option<string>("--format")
        {
            Description = "files: DIR/{key}.png with {key}.json (manifest entry) and {key}.txt (prompt); imagefolder: DIR/images/{key}.png and DIR/metadata.jsonl for Hugging Face datasets' ImageFolder; webdataset (jobs submitted with output webdataset): the farm's shards DIR/{shard:D6}.tar, every member's SHA-256 checked.",
            DefaultValueFactory = _ => DatasetLayouts.Files,
        };
        format.AcceptOnlyFromAmong(DatasetLayouts.All);
        var parallel = new Option<int>("--parallel")
        {
            Description = $"Downloads at a time, 1 to {MaxParallel} (default {DefaultParallel}).",
            DefaultValueFactory = _ => DefaultParallel,
        };
        parallel.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > MaxParallel)
            {
                r.AddError($"--parallel must be between 1 and {MaxParallel}.");
            }
        });
        var farm = FarmConnection.CreateOption();
        var command = new Command(
            "export",
            "Export a job as a dataset: DIR/manifest.jsonl and DIR/manifest.parquet (every item: parameters, status, error, SHA-256, duplicateOf) and each finished image, downloaded in parallel and verified against its SHA-256. Run again to resume: only missing or damaged images (with --format webdataset: shards) are fetched.")
        {
            id, output, format, parallel, farm,
        };
        command.SetAction((result, cancellationToken) =>
        {
            if (FarmConnection.ParseJobId(result, result.GetRequiredValue(id)) is not { } jobId)
            {
                return Task.FromResult(ExitCodes.InvalidInput);
            }

            var folder = Path.GetFullPath(result.GetRequiredValue(output));
            var layout = result.GetRequiredValue(format);
            return FarmConnection.RunAsync(result, farm, async client =>
            {
                var job = await client.GetJobAsync(jobId, imagesLimit: 1, cancellationToken: cancellationToken);
                if (job is null)
                {
                    return result.Fail(ExitCodes.InvalidInput, $"the farm has no job {jobId}.");
                }

                var exporter = new DatasetExporter(client, jobId, folder, layout, result.GetValue(parallel));
                try
                {
                    exporter.CreateFolders();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    return result.Fail(ExitCodes.InvalidInput, $"cannot create '{folder}': {ex.Message}");
                }

                (long Items, long Images, long Duplicates) manifest;
                try
                {
                    manifest = await exporter.FetchManifestsAsync(job.Items, cancellationToken);
                }
                catch (UnauthorizedAccessException ex)
                {
                    return result.Fail(ExitCodes.InvalidInput, $"cannot write to '{folder}': {ex.Message}");
                }
                catch (IOException ex)
                {
                    // A cut-off manifest (InvalidDataException), a response that broke off, a full disk.
                    return result.Fail(ExitCodes.Failure, $"saving the manifest failed: {ex.Message}");
                }

                try
                {
                    await WithProgressAsync(result, manifest.Images, advance => exporter.DownloadImagesAsync(advance, cancellationToken));
                }
                catch (InvalidDataException ex)
                {
                    // A job with the files output exported as webdataset.
                    return result.Fail(ExitCodes.InvalidInput, ex.Message);
                }

                var done = await exporter.FinishAsync(manifest.Items, manifest.Images, manifest.Duplicates, cancellationToken);
                return Report(result, job, folder, layout, done);
            }, cancellationToken);
        });
        return command;
    }

    private static int Report(ParseResult result, Client.Job job, string folder, string layout, ExportResult done)
    {
        var c = CultureInfo.InvariantCulture;
        var o = result.Out();
        var kept = done.Images - done.Failures.Count;
        o.WriteLine(string.Create(c, $"exported {kept} of {done.Images} image(s) of job {job.Id} to {folder} as {layout}: {done.Downloaded} downloaded ({done.Replaced} replacing damaged files), {done.Verified} already there and verified"));
        if (done.Unverified > 0)
        {
            o.WriteLine(string.Create(c, $"{done.Unverified} image(s) have no SHA-256 in the manifest (rendered by workers that report none) and were not verified"));
        }

        if (done.Duplicates > 0)
        {
            o.WriteLine(string.Create(c, $"{done.Duplicates} image(s) are byte-identical copies of an earlier item's (duplicateOf in the manifest)"));
        }

        if (done.Items > done.Images)
        {
            o.WriteLine(string.Create(c, $"{done.Items - done.Images} of {done.Items} item(s) have no image (not finished, failed or canceled); the manifests list each with its status and error"));
        }

        if (!job.IsFinal)
        {
            o.WriteLine(string.Create(c, $"the job is {job.State}: export again later for the rest."));
        }

        foreach (var (index, reason) in done.Failures.Take(ListedFailures))
        {
            result.Error().WriteLine(string.Create(c, $"error: item {index}: {reason}"));
        }

        if (done.Failures.Count > ListedFailures)
        {
            result.Error().WriteLine(string.Create(c, $"error: … and {done.Failures.Count - ListedFailures} more"));
        }

        if (done.Failures.Count > 0)
        {
            result.Error().WriteLine(string.Create(c, $"error: {done.Failures.Count} image(s) were not exported; run the export again to retry them."));
            return ExitCodes.Failure;
        }

        return ExitCodes.Success;
    }

    /// <summary>A progress bar on an interactive terminal; silence when output is captured or redirected.</summary>
    private static async Task WithProgressAsync(ParseResult result, long images, Func<Action, Task> work)
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
                var task = context.AddTask("exporting", maxValue: Math.Max(1, images));
                await work(() => task.Increment(1));
            });
    }
}
