using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace RenderFarm.IntegrationTests.Infrastructure;

/// <summary>
/// One farm host running as a child process (<c>dotnet &lt;dll&gt;</c>), its stdout and stderr captured line by line.
/// Disposing kills it and its children, so no test leaves a process behind.
/// </summary>
internal sealed class HostProcess : IDisposable
{
    // Prefixes of settings a developer's shell may export for their own farm; a child must see only the test's.
    private static readonly string[] InheritedPrefixesToDrop =
        ["RENDERFARM_", "Coordinator__", "Worker__", "Bus__", "Storage__", "Database__", "ConnectionStrings__", "OTEL_", "ASPNETCORE_URLS"];

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private HostProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    public static HostProcess Start(string name, string dll, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);

        foreach (var key in start.Environment.Keys.ToList())
        {
            if (InheritedPrefixesToDrop.Any(prefix => key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)))
                start.Environment.Remove(key);
        }

        // One line per log entry with a timestamp, so a failed test's output reads as a timeline.
        start.Environment["Logging__Console__FormatterName"] = "simple";
        start.Environment["Logging__Console__FormatterOptions__SingleLine"] = "true";
        start.Environment["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.fff ";
        foreach (var (key, value) in environment)
            start.Environment[key] = value;

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var host = new HostProcess(name, process);
        process.OutputDataReceived += (_, e) => host.Append(e.Data);
        process.ErrorDataReceived += (_, e) => host.Append(e.Data is null ? null : "[stderr] " + e.Data);
        if (!process.Start())
            throw new InvalidOperationException($"Could not start {name}: dotnet {dll}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return host;
    }

    /// <summary>SIGKILL: no shutdown hooks, no goodbye messages; the broker sees a dropped connection.</summary>
    public void Kill()
    {
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

        Append("[test] killed");
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
        {
            _output.Append('+').Append(_clock.Elapsed.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture)).Append("s ").AppendLine(line);
        }
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
}
