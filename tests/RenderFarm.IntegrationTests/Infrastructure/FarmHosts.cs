namespace RenderFarm.IntegrationTests.Infrastructure;

/// <summary>
/// The host assemblies this test assembly was built with, as the build recorded them in <c>farm-hosts.txt</c>
/// beside it (see the <c>WriteFarmHostPaths</c> target): the tests start what was built, and build nothing.
/// </summary>
internal static class FarmHosts
{
    private static readonly Lazy<IReadOnlyDictionary<string, string>> Paths = new(Read);

    public static string Coordinator => Get("RenderFarm.Coordinator");

    public static string Worker => Get("RenderFarm.Worker");

    public static string FarmBench => Get("RenderFarm.FarmBench");

    private static string Get(string name)
    {
        if (!Paths.Value.TryGetValue(name, out var path))
            throw new InvalidOperationException($"farm-hosts.txt beside the tests names no {name}; rebuild the test project.");
        if (!File.Exists(path))
            throw new InvalidOperationException($"{name} is recorded at {path}, which does not exist; rebuild the test project (it builds the hosts).");
        return path;
    }

    private static Dictionary<string, string> Read()
    {
        var file = Path.Combine(AppContext.BaseDirectory, "farm-hosts.txt");
        if (!File.Exists(file))
            throw new InvalidOperationException($"{file} is missing; the build writes it (target WriteFarmHostPaths). Rebuild the test project.");
        return File.ReadAllLines(file)
            .Select(line => line.Split('=', 2))
            .Where(parts => parts.Length == 2)
            .ToDictionary(parts => parts[0], parts => parts[1], StringComparer.Ordinal);
    }
}
