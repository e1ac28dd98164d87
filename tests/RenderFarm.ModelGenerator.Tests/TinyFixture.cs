namespace RenderFarm.ModelGenerator.Tests;

/// <summary>Generates the tiny model once per test class into a private temporary folder.</summary>
public sealed class TinyFixture : IDisposable
{
    public TinyFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "renderfarm-tiny-tests-" + Guid.NewGuid().ToString("N"));
        Directory = TestModels.EnsureTiny(Path.Combine(Root, "tiny"));
    }

    public string Root { get; }

    public string Directory { get; }

    public void Dispose() => System.IO.Directory.Delete(Root, recursive: true);
}
