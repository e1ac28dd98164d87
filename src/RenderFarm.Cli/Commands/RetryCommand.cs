using System.CommandLine;
using System.Globalization;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm retry ID</c>: renders a job's failed and canceled items again, same seeds; finished images are kept.</summary>
internal static class RetryCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The job id that `renderfarm submit` printed." };
        var farm = FarmConnection.CreateOption();
        var command = new Command("retry", "Queue a new attempt of a job's failed and canceled items with the same seeds and parameters; its finished images are kept. Exits 2 for an unknown job or one with nothing to retry (and for hires jobs: submit those again).") { id, farm };
        command.SetAction((result, cancellationToken) =>
        {
            if (FarmConnection.ParseJobId(result, result.GetRequiredValue(id)) is not { } jobId)
            {
                return Task.FromResult(ExitCodes.InvalidInput);
            }

            return FarmConnection.RunAsync(result, farm, async client =>
            {
                var retried = await client.RetryJobAsync(jobId, cancellationToken);
                result.Out().WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"job {retried.JobId}: {retried.State}; {retried.Requeued} item(s) queued again."));
                return ExitCodes.Success;
            }, cancellationToken);
        });
        return command;
    }
}
