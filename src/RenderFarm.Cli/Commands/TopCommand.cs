using System.CommandLine;
using System.Globalization;
using RenderFarm.Client;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RenderFarm.Cli.Commands;

/// <summary>
/// <c>renderfarm top</c>: the fleet and the queues, refreshed in place (Spectre.Console's live display) for operators
/// without a browser. Reads only the monitoring API (<c>GET /v1/workers</c>, <c>GET /v1/jobs</c>). With output
/// redirected it prints one snapshot and exits, so it also serves scripts and logs.
/// </summary>
internal static class TopCommand
{
    public const double DefaultIntervalSeconds = 2;

    public const int DefaultJobRows = 15;

    private const double MaxIntervalSeconds = 3600;

    private const int MaxJobRows = 500;

    /// <summary>Width a redirected snapshot is laid out for: wide enough that job ids never wrap.</summary>
    private const int SnapshotWidth = 200;

    /// <summary>How often the live view looks for a key press between refreshes.</summary>
    private static readonly TimeSpan KeyPoll = TimeSpan.FromMilliseconds(100);

    public static Command Create()
    {
        var interval = new Option<double>("--interval", "-n") { Description = "Seconds between refreshes.", DefaultValueFactory = _ => DefaultIntervalSeconds };
        var jobs = new Option<int>("--jobs") { Description = "Jobs listed (queued and running first, then the newest finished).", DefaultValueFactory = _ => DefaultJobRows };
        var farm = FarmConnection.CreateOption();
        var command = new Command("top", "Watch the farm live: workers (state, device, memory, strategy, current items), job counts by state, items waiting and running, and the active jobs. q or Ctrl+C quits; with output redirected, prints one snapshot.")
        {
            interval, jobs, farm,
        };
        command.SetAction((result, cancellationToken) =>
        {
            var seconds = result.GetValue(interval);
            if (!double.IsFinite(seconds) || seconds <= 0 || seconds > MaxIntervalSeconds)
            {
                return Task.FromResult(result.Fail(ExitCodes.InvalidInput, $"--interval must be more than 0 and at most {MaxIntervalSeconds} seconds, got {seconds}."));
            }

            var rows = result.GetValue(jobs);
            if (rows is < 1 or > MaxJobRows)
            {
                return Task.FromResult(result.Fail(ExitCodes.InvalidInput, $"--jobs must be between 1 and {MaxJobRows}, got {rows}."));
            }

            return FarmConnection.RunAsync(result, farm, async client =>
            {
                var output = result.Out();
                if (!JobWatcher.IsInteractive(output))
                {
                    var snapshot = await FarmSnapshot.ReadAsync(client, rows, cancellationToken);
                    var console = AnsiConsole.Create(new AnsiConsoleSettings
                    {
                        Ansi = AnsiSupport.No,
                        ColorSystem = ColorSystemSupport.NoColors,
                        Interactive = InteractionSupport.No,
                        Out = new AnsiConsoleOutput(output),
                    });
                    console.Profile.Width = SnapshotWidth;
                    console.Write(Render(snapshot, client.BaseAddress, null, live: false));
                    output.Flush();
                    return ExitCodes.Success;
                }

                await LiveAsync(client, TimeSpan.FromSeconds(seconds), rows, cancellationToken);
                return ExitCodes.Success;
            }, cancellationToken);
        });
        return command;
    }

    private static async Task LiveAsync(RenderFarmClient client, TimeSpan interval, int rows, CancellationToken cancellationToken)
    {
        // The first read fails the command like any verb (farm down: exit 1); later failures only show in the header.
        var snapshot = await FarmSnapshot.ReadAsync(client, rows, cancellationToken);
        await AnsiConsole.Live(Render(snapshot, client.BaseAddress, null, live: true))
            .AutoClear(false)
            .StartAsync(async context =>
            {
                try
                {
                    while (await WaitForTickAsync(interval, cancellationToken))
                    {
                        string? problem = null;
                        try
                        {
                            snapshot = await FarmSnapshot.ReadAsync(client, rows, cancellationToken);
                        }
                        catch (Exception ex) when (ex is HttpRequestException or RenderFarmApiException or Polly.ExecutionRejectedException)
                        {
                            problem = ex.Message;
                        }

                        context.UpdateTarget(Render(snapshot, client.BaseAddress, problem, live: true));
                    }
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    // Ctrl+C: leave the last view on screen and exit cleanly.
                }
            });
    }

    /// <summary>Waits one interval; false when the user pressed q (or Escape) meanwhile.</summary>
    private static async Task<bool> WaitForTickAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + interval;
        while (DateTime.UtcNow < deadline)
        {
            while (!Console.IsInputRedirected && Console.KeyAvailable)
            {
                if (Console.ReadKey(intercept: true).Key is ConsoleKey.Q or ConsoleKey.Escape)
                {
                    return false;
                }
            }

            await Task.Delay(KeyPoll, cancellationToken);
        }

        return true;
    }

    internal static IRenderable Render(FarmSnapshot snapshot, Uri farm, string? problem, bool live)
    {
        var c = CultureInfo.InvariantCulture;
        var liveWorkers = snapshot.Workers.Count(w => w.Live);
        var busy = snapshot.Workers.Count(w => w.Live && w.CurrentItems.Count > 0);
        var states = string.Join("  ", snapshot.JobsByState.Select(s => string.Create(c, $"{s.Key.ToString().ToLowerInvariant()} {s.Value}")));
        var header = new Markup(Markup.Escape(string.Create(c,
            $"renderfarm top  {farm}  {snapshot.ReadAt:HH:mm:ss}  workers {liveWorkers} live ({busy} busy) of {snapshot.Workers.Count}  jobs: {states}  items in the listed active jobs: {snapshot.ItemsQueued} waiting, {snapshot.ItemsRunning} running"))
            + (problem is null ? "" : $"\n[red]{Markup.Escape($"last refresh failed: {problem}")}[/]"));

        var workers = new Table().Border(TableBorder.Simple).Title("workers")
            .AddColumns("ID", "STATE", "LIVE", "DEVICE", "MEMORY GiB free/total", "BUDGET GiB", "STRATEGY", "MODELS", "ITEMS", "HEARTBEAT");
        foreach (var w in snapshot.Workers.OrderByDescending(w => w.Live).ThenBy(w => w.Id, StringComparer.Ordinal))
        {
            workers.AddRow(
                Cell(w.Id),
                Cell(w.State.ToString()),
                Cell(w.Live ? "yes" : "no"),
                Cell(w.Device),
                Cell(string.Create(c, $"{w.MemoryFreeBytes / 1073741824.0:0.0}/{w.MemoryTotalBytes / 1073741824.0:0.0}")),
                Cell(string.Create(c, $"{w.MemoryBudgetBytes / 1073741824.0:0.00}")),
                Cell(w.Strategy),
                Cell(w.LoadedModels.Count == 0 ? "-" : string.Join(',', w.LoadedModels)),
                Cell(w.CurrentItems.Count.ToString(c)),
                Cell(Age(snapshot.ReadAt - w.LastHeartbeat)));
        }

        var jobs = new Table().Border(TableBorder.Simple).Title("jobs")
            .AddColumns("ID", "STATE", "MODE", "MODEL", "SIZE", "DONE/TOTAL", "RUNNING", "WAITING", "FAILED", "PRIORITY", "AGE");
        foreach (var j in snapshot.Jobs)
        {
            var p = j.Progress;
            jobs.AddRow(
                Cell(j.Id.ToString()),
                Cell(j.State.ToString()),
                Cell(j.Mode),
                Cell(j.Model),
                Cell(string.Create(c, $"{j.Width}x{j.Height}")),
                Cell(string.Create(c, $"{p.Done}/{p.Total}")),
                Cell(p.Running.ToString(c)),
                Cell((p.Queued + p.Retrying).ToString(c)),
                Cell(p.Failed.ToString(c)),
                Cell(j.Priority.ToString(c)),
                Cell(Age(snapshot.ReadAt - j.CreatedAt)));
        }

        return live ? new Rows(header, workers, jobs, new Markup("[grey]q or Ctrl+C quits[/]")) : new Rows(header, workers, jobs);
    }

    private static Markup Cell(string text) => new(Markup.Escape(text));

    private static string Age(TimeSpan age) =>
        age < TimeSpan.Zero ? "now"
        : age.TotalSeconds < 120 ? string.Create(CultureInfo.InvariantCulture, $"{age.TotalSeconds:0}s")
        : age.TotalMinutes < 120 ? string.Create(CultureInfo.InvariantCulture, $"{age.TotalMinutes:0}m")
        : string.Create(CultureInfo.InvariantCulture, $"{age.TotalHours:0}h");
}

/// <summary>One read of the monitoring API: workers, job counts by state, and the jobs worth showing.</summary>
/// <param name="ReadAt">When it was read (ages are shown against this).</param>
/// <param name="Workers">Every worker the farm knows.</param>
/// <param name="JobsByState">Jobs in each state, farm-wide.</param>
/// <param name="Jobs">Queued and running jobs first, then the newest others, up to <c>--jobs</c>.</param>
/// <param name="ItemsQueued">Items waiting (queued or backing off) in the active jobs read (up to <c>--jobs</c> queued and as many running).</param>
/// <param name="ItemsRunning">Items rendering in those jobs.</param>
internal sealed record FarmSnapshot(
    DateTimeOffset ReadAt,
    IReadOnlyList<RenderFarm.Client.Worker> Workers,
    IReadOnlyDictionary<JobState, long> JobsByState,
    IReadOnlyList<JobSummary> Jobs,
    long ItemsQueued,
    long ItemsRunning)
{
    private static readonly JobState[] Active = [JobState.Running, JobState.Queued];

    public static async Task<FarmSnapshot> ReadAsync(RenderFarmClient client, int rows, CancellationToken cancellationToken)
    {
        var workers = await client.GetWorkersAsync(cancellationToken);
        // One small page per state gives its total; the API has no farm-wide count endpoint of its own.
        var byState = new Dictionary<JobState, long>();
        var active = new List<JobSummary>();
        foreach (var state in Enum.GetValues<JobState>())
        {
            var page = await client.ListJobsAsync(state, 1, Active.Contains(state) ? rows : 1, cancellationToken);
            byState[state] = page.Total;
            if (Active.Contains(state))
            {
                active.AddRange(page.Items);
            }
        }

        var listed = active.Take(rows).ToList();
        if (listed.Count < rows)
        {
            var recent = await client.ListJobsAsync(null, 1, rows, cancellationToken);
            listed.AddRange(recent.Items.Where(j => listed.All(l => l.Id != j.Id)).Take(rows - listed.Count));
        }

        return new FarmSnapshot(
            DateTimeOffset.UtcNow,
            workers,
            byState,
            listed,
            active.Sum(j => j.Progress.Queued + j.Progress.Retrying),
            active.Sum(j => j.Progress.Running));
    }
}
