using System.Globalization;
using RenderFarm.Client;
using Spectre.Console;
using Spectre.Console.Rendering;

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
    public static Task<Job> WatchAsync(RenderFarmClient client, Guid jobId, TextWriter output, CancellationToken cancellationToken) =>
        WatchAsync(client, jobId, output, PreviewDisplay.None, cancellationToken);

    /// <summary>Follows the job until it is final, showing or saving running items' previews as <paramref name="previews"/> says.</summary>
    public static async Task<Job> WatchAsync(RenderFarmClient client, Guid jobId, TextWriter output, PreviewDisplay previews, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(previews);
        if (!IsInteractive(output))
        {
            return await FollowAsync(client, jobId, async e =>
            {
                if (e.Type == JobEventTypes.Preview)
                {
                    await WritePreviewAsync(client, jobId, output, previews, e, cancellationToken);
                    return;
                }

                WritePlain(output, e);
            }, cancellationToken);
        }

        if (previews.InTerminal)
        {
            return await WatchWithPreviewAsync(client, jobId, previews, cancellationToken);
        }

        Job? final = null;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var bar = context.AddTask($"job {jobId}", autoStart: true, maxValue: 1);
                var view = new LiveJob();
                final = await FollowAsync(client, jobId, async e =>
                {
                    if (e.Type == JobEventTypes.Preview && previews.Directory is not null && e.Index is { } index
                        && await client.GetItemPreviewAsync(jobId, index, cancellationToken) is { } preview)
                    {
                        await previews.SaveAsync(index, preview, cancellationToken);
                    }

                    view.Apply(e);
                    bar.MaxValue = Math.Max(1, view.Total);
                    bar.Value = view.Done;
                    bar.Description = Markup.Escape($"job {jobId}{view.Steps()}");
                }, cancellationToken);
                bar.Value = bar.MaxValue;
                bar.StopTask();
            });
        return final!;
    }

    /// <summary>A live display of the progress line with the newest preview drawn under it.</summary>
    private static async Task<Job> WatchWithPreviewAsync(RenderFarmClient client, Guid jobId, PreviewDisplay previews, CancellationToken cancellationToken)
    {
        var view = new LiveJob();
        IRenderable picture = new Markup("[grey]waiting for a preview…[/]");
        string caption = "";
        IRenderable Layout() => new Rows(
            new Markup(Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"job {jobId}: {view.Done}/{view.Total} done{view.Steps()}"))),
            picture,
            new Markup(Markup.Escape(caption)));

        Job? final = null;
        await AnsiConsole.Live(Layout()).AutoClear(false).StartAsync(async context =>
        {
            final = await FollowAsync(client, jobId, async e =>
            {
                view.Apply(e);
                if (e.Type == JobEventTypes.Preview && e.Index is { } index
                    && await client.GetItemPreviewAsync(jobId, index, cancellationToken) is { } preview)
                {
                    if (previews.Directory is not null)
                    {
                        await previews.SaveAsync(index, preview, cancellationToken);
                    }

                    picture = PreviewDisplay.ToCanvas(preview);
                    caption = string.Create(CultureInfo.InvariantCulture, $"item {index} at step {preview.Step}/{preview.TotalSteps} (latent preview)");
                }
                else if (e.Type is JobEventTypes.ItemDone && e.Index is { } done && caption.StartsWith($"item {done} ", StringComparison.Ordinal))
                {
                    caption += ", done";
                }

                context.UpdateTarget(Layout());
            }, cancellationToken);
        });
        return final!;
    }

    private static async Task WritePreviewAsync(RenderFarmClient client, Guid jobId, TextWriter output, PreviewDisplay previews, JobEvent e, CancellationToken cancellationToken)
    {
        if (!previews.Wanted || e.Index is not { } index)
        {
            return;
        }

        var c = CultureInfo.InvariantCulture;
        if (previews.Directory is null)
        {
            output.WriteLine(string.Create(c, $"item {index} preview at step {e.Step}/{e.TotalSteps}: {e.Url}"));
        }
        else if (await client.GetItemPreviewAsync(jobId, index, cancellationToken) is { } preview)
        {
            // The preview fetched may already be a newer step than the event's; the file holds what was fetched.
            var path = await previews.SaveAsync(index, preview, cancellationToken);
            output.WriteLine(string.Create(c, $"item {index} preview at step {preview.Step}/{preview.TotalSteps}: {path}"));
        }

        output.Flush();
    }

    private static async Task<Job> FollowAsync(RenderFarmClient client, Guid jobId, Func<JobEvent, Task> onEvent, CancellationToken cancellationToken)
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

                await onEvent(jobEvent);
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

    /// <summary>The counts and running steps a live view shows, updated event by event.</summary>
    private sealed class LiveJob
    {
        private readonly Dictionary<long, string> _running = [];

        public long Done { get; private set; }

        public long Total { get; private set; } = 1;

        public void Apply(JobEvent e)
        {
            switch (e.Type)
            {
                case JobEventTypes.Snapshot:
                    Total = Math.Max(1, e.Total ?? 1);
                    Done = e.Done ?? 0;
                    break;
                case JobEventTypes.ItemStarted or JobEventTypes.ItemProgress when e.Index is { } index:
                    _running[index] = e.TotalSteps is { } total ? $"#{index} {e.Step ?? 0}/{total}" : $"#{index}";
                    break;
                case JobEventTypes.ItemDone or JobEventTypes.ItemFailed when e.Index is { } index:
                    _running.Remove(index);
                    Done++;
                    break;
                case JobEventTypes.ItemRetrying when e.Index is { } index:
                    _running.Remove(index);
                    break;
            }
        }

        public string Steps() =>
            _running.Count == 0 ? "" : " " + string.Join(' ', _running.OrderBy(r => r.Key).Take(4).Select(r => r.Value));
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
