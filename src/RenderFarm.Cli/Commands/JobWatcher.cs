using System.Globalization;
using RenderFarm.Client;
using Spectre.Console;

namespace RenderFarm.Cli.Commands;

/// <summary>Follows a job to its end over SSE, shown live in a terminal or as plain lines when output is redirected.</summary>
internal static class JobWatcher
{
    /// <summary>Pause before following again when the stream ended without <c>job-done</c> (a coordinator restart).</summary>
    private static readonly TimeSpan Reconnect = TimeSpan.FromSeconds(1);

    /// <summary>True when <paramref name="output"/> is a terminal that can show a live display.</summary>
    public static bool IsInteractive(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Follows the job until it is final and returns it as it ended.</summary>
    public static async Task<Job> WatchAsync(RenderFarmClient client, Guid jobId, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(output);
        if (!IsInteractive(output))
        {
            return await FollowAsync(client, jobId, e => WritePlain(output, e), cancellationToken);
        }

        Job? final = null;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var bar = context.AddTask($"job {jobId}", autoStart: true, maxValue: 1);
                var running = new Dictionary<long, string>();
                final = await FollowAsync(client, jobId, e =>
                {
                    switch (e.Type)
                    {
                        case JobEventTypes.Snapshot:
                            bar.MaxValue = Math.Max(1, e.Total ?? 1);
                            bar.Value = e.Done ?? 0;
                            break;
                        case JobEventTypes.ItemStarted or JobEventTypes.ItemProgress when e.Index is { } index:
                            running[index] = e.TotalSteps is { } total ? $"#{index} {e.Step ?? 0}/{total}" : $"#{index}";
                            break;
                        case JobEventTypes.ItemDone or JobEventTypes.ItemFailed when e.Index is { } index:
                            running.Remove(index);
                            bar.Increment(1);
                            break;
                        case JobEventTypes.ItemRetrying when e.Index is { } index:
                            running.Remove(index);
                            break;
                    }

                    var steps = running.Count == 0 ? "" : " " + string.Join(' ', running.OrderBy(r => r.Key).Take(4).Select(r => r.Value));
                    bar.Description = Markup.Escape($"job {jobId}{steps}");
                }, cancellationToken);
                bar.Value = bar.MaxValue;
                bar.StopTask();
            });
        return final!;
    }

    private static async Task<Job> FollowAsync(RenderFarmClient client, Guid jobId, Action<JobEvent> onEvent, CancellationToken cancellationToken)
    {
        // Progress events name the item by id only; the index (what users see) comes from its item-started event.
        var indexes = new Dictionary<Guid, long>();
        while (true)
        {
            await foreach (var received in client.FollowEventsAsync(jobId, cancellationToken))
            {
                var jobEvent = received;
                if (jobEvent is { ItemId: { } itemId, Index: { } index })
                {
                    indexes[itemId] = index;
                }
                else if (jobEvent is { ItemId: { } known, Index: null } && indexes.TryGetValue(known, out var found))
                {
                    jobEvent = jobEvent with { Index = found };
                }

                onEvent(jobEvent);
                if (jobEvent.Type == JobEventTypes.JobDone)
                {
                    break;
                }
            }

            // The stream ends after job-done, or early when the coordinator went away; the job itself decides.
            var job = await client.GetJobAsync(jobId, cancellationToken: cancellationToken)
                ?? throw new RenderFarmApiException(404, "No such job.", $"There is no job {jobId}.", new Dictionary<string, IReadOnlyList<string>>());
            if (job.IsFinal)
            {
                return job;
            }

            await Task.Delay(Reconnect, cancellationToken);
        }
    }

    private static void WritePlain(TextWriter output, JobEvent e)
    {
        var c = CultureInfo.InvariantCulture;
        var line = e.Type switch
        {
            JobEventTypes.Snapshot => string.Create(c, $"{e.State}: {e.Done}/{e.Total} items done"),
            JobEventTypes.ItemStarted => string.Create(c, $"item {e.Index} started on {e.WorkerId ?? "?"} (attempt {e.Attempt})"),
            JobEventTypes.ItemProgress => string.Create(c, $"item {(e.Index is { } i ? i.ToString(c) : e.ItemId?.ToString())} step {e.Step}/{e.TotalSteps}"),
            JobEventTypes.ItemDone => string.Create(c, $"item {e.Index} done: {e.Url}"),
            JobEventTypes.ItemRetrying => string.Create(c, $"item {e.Index} will be retried: {e.Error}"),
            JobEventTypes.ItemFailed => string.Create(c, $"item {e.Index} failed: {e.Error}"),
            JobEventTypes.JobState => $"job is {e.State}",
            JobEventTypes.JobDone => $"job finished: {e.State}",
            _ => e.Type,
        };
        output.WriteLine(line);
        output.Flush();
    }

    /// <summary>A job as plain text: state, progress, running items, why it waits, errors, images.</summary>
    public static void WriteJob(TextWriter output, Job job)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(job);
        var c = CultureInfo.InvariantCulture;
        var p = job.Progress;
        output.WriteLine(string.Create(c, $"job {job.Id}: {job.State}, {p.Done}/{p.Total} items done ({p.Succeeded} succeeded, {p.Failed} failed, {p.Canceled} canceled, {p.Running} running, {p.Queued + p.Retrying} waiting)"));
        output.WriteLine(string.Create(c, $"  {job.Mode} on {job.Model}, {job.Width}x{job.Height}, seed {job.Seed}, priority {job.Priority}, created {job.CreatedAt:u}{(job.FinishedAt is { } f ? $", finished {f:u}" : "")}"));
        if (job.Tiles is { } tiles)
        {
            // The first page of tiles is enough for a count: a job lists up to 1000, and the total is items − 2 (base, stitch).
            var total = job.Items - 2;
            output.WriteLine(string.Create(c, $"  hires: {tiles.Count(t => t.State == ItemState.Succeeded)}{(tiles.Count < total ? "+" : "")}/{total} tiles done, final image {job.ResultImage ?? "not stitched yet"}"));
        }

        foreach (var item in job.RunningItems)
        {
            output.WriteLine(string.Create(c, $"  running: item {item.Index} step {item.Step}/{item.TotalSteps} on {item.WorkerId ?? "?"} (attempt {item.Attempt})"));
        }

        if (job.EligibleWorkers is { } eligible && !job.IsFinal)
        {
            output.WriteLine(string.Create(c, $"  workers that can take it: {eligible}"));
        }

        if (job.WaitingReason is { } reason)
        {
            output.WriteLine($"  waiting: {reason}");
        }

        if (job.CancelReason is { } cancel)
        {
            output.WriteLine($"  canceled: {cancel}");
        }

        foreach (var error in job.Errors)
        {
            output.WriteLine(string.Create(c, $"  {(error.Final ? "failed" : "retrying")}: item {error.Index} (seed {error.Seed}, attempt {error.Attempt}): {error.Error}"));
        }

        output.WriteLine(string.Create(c, $"  images: {p.Succeeded} (renderfarm fetch {job.Id} -o DIR)"));
    }
}
