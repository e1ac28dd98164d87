using System.CommandLine;
using System.Globalization;
using RenderFarm.Client;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm jobs [--state S]</c>: the farm's jobs, newest first.</summary>
internal static class JobsCommand
{
    public static Command Create()
    {
        var state = new Option<string?>("--state") { Description = $"Only jobs in this state: {string.Join(", ", Enum.GetNames<JobState>())}." };
        var page = new Option<int>("--page") { Description = "Page, from 1.", DefaultValueFactory = _ => 1 };
        var pageSize = new Option<int>("--page-size") { Description = "Jobs per page (1..500).", DefaultValueFactory = _ => 50 };
        var farm = FarmConnection.CreateOption();
        var command = new Command("jobs", "List jobs, newest first.") { state, page, pageSize, farm };
        command.SetAction((result, cancellationToken) =>
        {
            JobState? filter = null;
            if (result.GetValue(state) is { } text)
            {
                if (!Enum.TryParse<JobState>(text, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed) || int.TryParse(text, out _))
                {
                    return Task.FromResult(result.Fail(ExitCodes.InvalidInput, $"--state '{text}' is not a job state; use one of: {string.Join(", ", Enum.GetNames<JobState>())}."));
                }

                filter = parsed;
            }

            return FarmConnection.RunAsync(result, farm, async client =>
            {
                var jobs = await client.ListJobsAsync(filter, result.GetValue(page), result.GetValue(pageSize), cancellationToken);
                var o = result.Out();
                var c = CultureInfo.InvariantCulture;
                o.WriteLine($"{"ID",-36}  {"STATE",-9}  {"DONE",13}  {"MODEL",-12}  {"SIZE",-9}  CREATED");
                foreach (var job in jobs.Items)
                {
                    var done = string.Create(c, $"{job.Progress.Done}/{job.Progress.Total}");
                    var size = string.Create(c, $"{job.Width}x{job.Height}");
                    o.WriteLine(string.Create(c, $"{job.Id,-36}  {job.State,-9}  {done,13}  {job.Model,-12}  {size,-9}  {job.CreatedAt:u}"));
                }

                o.WriteLine(string.Create(c, $"page {jobs.Page} of {Math.Max(1, (jobs.Total + jobs.PageSize - 1) / jobs.PageSize)} ({jobs.Total} job(s))"));
                return ExitCodes.Success;
            }, cancellationToken);
        });
        return command;
    }
}
