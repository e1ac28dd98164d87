using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace RenderFarm.IntegrationTests.Infrastructure;

/// <summary>
/// Debian's real Prometheus (<c>/usr/bin/prometheus</c>) as a child process on a free port with its own TSDB folder,
/// scraping the targets it is given every second. Disposing kills it and deletes the folder.
/// </summary>
internal sealed class PrometheusServer : IAsyncDisposable
{
    public const string Binary = "/usr/bin/prometheus";

    private readonly Process _process;
    private readonly string _folder;
    private readonly StringBuilder _output = new();

    private PrometheusServer(Process process, string folder, Uri address)
    {
        _process = process;
        _folder = folder;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(15) };
    }

    public HttpClient Client { get; }

    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>Starts Prometheus scraping each job's <c>host:port</c> targets at <c>/metrics</c>.</summary>
    public static PrometheusServer Start(IReadOnlyDictionary<string, string> jobs)
    {
        var folder = Directory.CreateTempSubdirectory("renderfarm-prometheus-").FullName;
        var config = new StringBuilder("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n");
        foreach (var (job, target) in jobs)
            config.Append(CultureInfo.InvariantCulture, $"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n");
        var configPath = Path.Combine(folder, "prometheus.yml");
        File.WriteAllText(configPath, config.ToString());

        var port = Farm.FreePort();
        var start = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] arguments =
        [
            "--config.file=" + configPath,
            "--storage.tsdb.path=" + Path.Combine(folder, "data"),
            $"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ];
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);

        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start " + Binary);
        var server = new PrometheusServer(process, folder, new Uri($"http://127.0.0.1:{port}/"));
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>Runs an instant query; returns the API's status and the result vector (or the error).</summary>
    public async Task<(bool Success, JsonElement Result, string Body)> QueryAsync(string promql, CancellationToken cancellationToken)
    {
        using var response = await Client.GetAsync("api/v1/query?query=" + Uri.EscapeDataString(promql), cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        // A Prometheus still starting answers "Service Unavailable" as plain text: not an answer yet, not a crash.
        if (response.Content.Headers.ContentType?.MediaType != "application/json")
            return (false, default, $"{(int)response.StatusCode} {body}");

        using var json = JsonDocument.Parse(body);
        var success = json.RootElement.GetProperty("status").GetString() == "success";
        var result = success ? json.RootElement.GetProperty("data").GetProperty("result").Clone() : default;
        return (success, result, body);
    }

    /// <summary>Whether every scrape target reports <c>up</c>.</summary>
    public async Task<bool> AllTargetsUpAsync(int expected, CancellationToken cancellationToken)
    {
        try
        {
            var (success, result, _) = await QueryAsync("up == 1", cancellationToken);
            return success && result.GetArrayLength() == expected;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    public ValueTask DisposeAsync()
    {
        Client.Dispose();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited between the check and the kill.
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A TSDB file still closing; the temp folder is cleaned up by the OS eventually.
        }

        return ValueTask.CompletedTask;
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }
}
