using System.CommandLine;
using RenderFarm.Client;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm status ID [--watch]</c>: a job's state, once or followed live.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The job id that `renderfarm submit` printed." };
        var watch = new Option<bool>("--watch", "-w") { Description = "Follow the job live until it finishes (plain lines when output is redirected); exit 0 only when it succeeded." };
        var preview = new Option<bool>("--preview") { Description = "With --watch: draw the newest preview of a running item under the progress line (a terminal); redirected, print a line per preview with its URL." };
        var previewDir = new Option<string?>("--preview-dir") { Description = "With --watch: save each running item's latest preview to DIR/NNNNNN.preview.jpg, replaced as it refines." };
        var farm = FarmConnection.CreateOption();
        var command = new Command("status", "Show a job's state, progress, running items, errors and why it waits.") { id, watch, preview, previewDir, farm };
        command.SetAction((result, cancellationToken) =>
        {
            if (FarmConnection.ParseJobId(result, result.GetRequiredValue(id)) is not { } jobId)
            {
                return Task.FromResult(ExitCodes.InvalidInput);
            }

            var previews = new PreviewDisplay(result.GetValue(preview), result.GetValue(previewDir) is { Length: > 0 } dir ? Path.GetFullPath(dir) : null);
            if (previews.Wanted && !result.GetValue(watch))
            {
                return Task.FromResult(result.Fail(ExitCodes.InvalidInput, "--preview and --preview-dir show previews while following a job: add --watch."));
            }

            return FarmConnection.RunAsync(result, farm, async client =>
            {
                var job = await client.GetJobAsync(jobId, cancellationToken: cancellationToken);
                if (job is null)
                {
                    return result.Fail(ExitCodes.InvalidInput, $"the farm has no job {jobId}.");
                }

                if (result.GetValue(watch) && !job.IsFinal)
                {
                    job = await JobWatcher.WatchAsync(client, jobId, result.Out(), previews, cancellationToken);
                }

                JobWatcher.WriteJob(result.Out(), job);
                return !result.GetValue(watch) || job.State == JobState.Succeeded ? ExitCodes.Success : ExitCodes.Failure;
            }, cancellationToken);
        });
        return command;
    }
}
