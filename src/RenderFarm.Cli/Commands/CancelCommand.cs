using System.CommandLine;
using System.Globalization;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm cancel ID [--reason TEXT]</c>: cancels a job's unfinished items; finished images are kept.</summary>
internal static class CancelCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The job id that `renderfarm submit` printed." };
        var reason = new Option<string?>("--reason") { Description = "Why, kept with the job and shown by `renderfarm status`." };
        var farm = FarmConnection.CreateOption();
        var command = new Command("cancel", "Cancel a job: its queued items never run, running ones stop between denoising steps, finished images are kept. Exits 2 for an unknown or already finished job.") { id, reason, farm };
        command.SetAction((result, cancellationToken) =>
        {
            if (FarmConnection.ParseJobId(result, result.GetRequiredValue(id)) is not { } jobId)
            {
                return Task.FromResult(ExitCodes.InvalidInput);
            }

            return FarmConnection.RunAsync(result, farm, async client =>
            {
                var job = await client.CancelJobAsync(jobId, result.GetValue(reason), cancellationToken);
                var p = job.Progress;
                result.Out().WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"job {job.Id}: {job.State}; {p.Canceled} item(s) canceled, {p.Succeeded} finished image(s) kept."));
                return ExitCodes.Success;
            }, cancellationToken);
        });
        return command;
    }
}
