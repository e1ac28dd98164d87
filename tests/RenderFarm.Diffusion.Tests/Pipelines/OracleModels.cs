using RenderFarm.ModelGenerator;

namespace RenderFarm.Diffusion.Tests.Pipelines;

/// <summary>The oracle model folders, generated once per test run into a temporary folder.</summary>
public sealed class OracleModels : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "renderfarm-oracle-" + Guid.NewGuid().ToString("N"));

    public OracleModels()
    {
        Default = TestModels.EnsureOracle(Path.Combine(_root, "oracle"));
        Float16 = TestModels.EnsureOracle(Path.Combine(_root, "oracle-fp16"), new OracleModelOptions(Float16: true));
        FloatTimestep = TestModels.EnsureOracle(Path.Combine(_root, "oracle-float-t"), new OracleModelOptions(FloatTimestep: true));
    }

    public string Default { get; }
    public string Float16 { get; }
    public string FloatTimestep { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless; failing the run over it is not.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class OracleCollection : ICollectionFixture<OracleModels>
{
    public const string Name = "oracle models";
}
