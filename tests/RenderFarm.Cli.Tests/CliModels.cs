using RenderFarm.ModelGenerator;

namespace RenderFarm.Cli.Tests;

/// <summary>Generated model folders shared by the CLI tests (the oracle is cheap; the tiny model is the CLI's default).</summary>
public sealed class CliModels : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("renderfarm-cli-").FullName;

    public CliModels()
    {
        Oracle = TestModels.EnsureOracle(Path.Combine(_root, "oracle"));
        Tiny = TestModels.EnsureTiny(Path.Combine(_root, "tiny-sd"));
    }

    public string Oracle { get; }
    public string Tiny { get; }
    public string Scratch => _root;

    public void Dispose() => Directory.Delete(_root, recursive: true);
}

[CollectionDefinition(Name)]
public sealed class CliCollection : ICollectionFixture<CliModels>
{
    public const string Name = "cli models";
}

internal static class Cli
{
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exitCode = await CliApp.RunAsync(args, output, error, CancellationToken.None);
        return (exitCode, output.ToString(), error.ToString());
    }

    /// <summary>The folder beside the repository that holds the shared test data (CI has it at ../shared).</summary>
    public static string SharedFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "clip-vit-l-14-tokenizer");
            if (Directory.Exists(candidate))
            {
                return Path.Combine(dir.FullName, "shared");
            }
        }

        throw new DirectoryNotFoundException("shared/clip-vit-l-14-tokenizer was not found above the test's folder; it lives beside the repository.");
    }
}
