using System.Text.RegularExpressions;
using RenderFarm.Client;

namespace RenderFarm.Cli.Tests;

/// <summary>
/// <c>renderfarm serve --urls http://127.0.0.1:0</c> running in-process (the same path as the executable) on a
/// background task; port 0 lets Kestrel pick a free port, which serve prints and this reads back.
/// </summary>
public sealed partial class EmbeddedServe : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly CancellationTokenSource _stop = new();
    private readonly StringWriter _buffer = new();
    private readonly TextWriter _output;
    private readonly Task<int> _run;

    private EmbeddedServe(string urls, string dataRoot, int workers, string[] extraArgs)
    {
        DataRoot = dataRoot;
        _output = TextWriter.Synchronized(_buffer);
        string[] args = ["serve", "--urls", urls, "--workers", workers.ToString(), "--data", dataRoot, .. extraArgs];
        _run = Task.Run(() => CliApp.RunAsync(args, _output, _output, _stop.Token));
    }

    public string DataRoot { get; }

    public Uri Address { get; private set; } = null!;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _buffer.ToString();
            }
        }
    }

    public static Task<EmbeddedServe> StartAsync(string dataRoot, int workers = 2, params string[] extraArgs) =>
        StartOnAsync("http://127.0.0.1:0", dataRoot, workers, extraArgs);

    /// <summary>Serve on <paramref name="urls"/>; a wildcard address is reached through 127.0.0.1.</summary>
    public static async Task<EmbeddedServe> StartOnAsync(string urls, string dataRoot, int workers = 1, params string[] extraArgs)
    {
        var serve = new EmbeddedServe(urls, dataRoot, workers, extraArgs);
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Listening().Match(serve.Output) is { Success: true } match)
            {
                serve.Address = new UriBuilder(match.Groups[1].Value) { Host = "127.0.0.1" }.Uri;
                return serve;
            }

            if (serve._run.IsCompleted)
            {
                throw new InvalidOperationException($"renderfarm serve exited early ({await serve._run}): {serve.Output}");
            }

            await Task.Delay(100);
        }

        await serve.DisposeAsync();
        throw new TimeoutException($"renderfarm serve did not start within {StartTimeout}: {serve.Output}");
    }

    public RenderFarmClient CreateClient() => new(new HttpClient { BaseAddress = Address });

    /// <summary>Stops serve as Ctrl+C does (the command's token) and returns its exit code.</summary>
    public async Task<int> StopAsync()
    {
        await _stop.CancelAsync();
        return await _run;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_run.IsCompleted)
        {
            await StopAsync();
        }

        _stop.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }

    [GeneratedRegex(@"listening on (http://\S+)")]
    private static partial Regex Listening();
}

/// <summary>One embedded farm with two workers shared by a test class; its data folder is deleted afterwards.</summary>
public sealed class EmbeddedFarmFixture : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("rf-serve-").FullName;

    public EmbeddedServe Serve { get; private set; } = null!;

    public string Scratch => _root;

    public async Task InitializeAsync() => Serve = await EmbeddedServe.StartAsync(Path.Combine(_root, "data"));

    public async Task DisposeAsync()
    {
        if (Serve is not null)
        {
            await Serve.DisposeAsync();
        }

        Directory.Delete(_root, recursive: true);
    }
}
