using System.CommandLine;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm delete ID</c>: removes a finished job, its images and its rows from the farm.</summary>
internal static class DeleteCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The job id that `renderfarm submit` printed." };
        var farm = FarmConnection.CreateOption();
        var command = new Command("delete", "Delete a finished job: its images (and a hires job's base and tiles) are removed from the store and the job from the farm. Exits 2 for an unknown job or one still queued or running (cancel it first).") { id, farm };
        command.SetAction((result, cancellationToken) =>
        {
            if (FarmConnection.ParseJobId(result, result.GetRequiredValue(id)) is not { } jobId)
            {
                return Task.FromResult(ExitCodes.InvalidInput);
            }

            return FarmConnection.RunAsync(result, farm, async client =>
            {
                await client.DeleteJobAsync(jobId, cancellationToken);
                result.Out().WriteLine($"job {jobId}: deleted, with its images.");
                return ExitCodes.Success;
            }, cancellationToken);
        });
        return command;
    }
}
