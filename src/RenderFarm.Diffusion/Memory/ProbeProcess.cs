using System.Diagnostics;
using System.Text.Json;

namespace RenderFarm.Diffusion.Memory;

/// <summary>
/// Runs a calibration probe (or any measurement) in a fresh child process, so its peak RSS starts from a clean
/// process and no earlier measurement's retained memory hides in it. The child prints one line
/// <c>probe-result {json}</c> (<see cref="Write"/>); everything else it prints is ignored.
/// </summary>
public static class ProbeProcess
{
    public const string Prefix = "probe-result ";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The line a child prints with its result.</summary>
    public static string Write<T>(T result) => Prefix + JsonSerializer.Serialize(result, Json);

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="arguments"/>, waits, and parses its result line.</summary>
    public static async Task<T> RunAsync<T>(string fileName, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start '{fileName}'.");
        using var kill = cancellationToken.Register(() =>
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }
        });
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        var output = await stdout;
        var line = output.Split('\n').LastOrDefault(l => l.StartsWith(Prefix, StringComparison.Ordinal));
        if (process.ExitCode != 0 || line is null)
        {
            throw new InvalidOperationException($"Probe '{fileName} {string.Join(' ', start.ArgumentList)}' failed (exit {process.ExitCode}): {(await stderr).Trim()}");
        }

        return JsonSerializer.Deserialize<T>(line[Prefix.Length..], Json) ?? throw new InvalidDataException("Empty probe result.");
    }

    /// <summary>How to start this program again: its apphost, or <c>dotnet</c> with its assembly.</summary>
    public static (string FileName, IReadOnlyList<string> Arguments) Self(string assemblyName)
    {
        var apphost = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? assemblyName + ".exe" : assemblyName);
        return File.Exists(apphost)
            ? (apphost, [])
            : ("dotnet", [Path.Combine(AppContext.BaseDirectory, assemblyName + ".dll")]);
    }
}
