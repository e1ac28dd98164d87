namespace RenderFarm.ModelGenerator.Tests;

/// <summary>Generates the oracle and its type variants once per test class into a private temporary folder.</summary>
public sealed class OracleFixture : IDisposable
{
    public OracleFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), "renderfarm-oracle-tests-" + Guid.NewGuid().ToString("N"));
        Default = TestModels.EnsureOracle(Path.Combine(Root, "oracle"));
        Float16 = TestModels.EnsureOracle(Path.Combine(Root, "oracle-fp16"), new OracleModelOptions(Float16: true));
        FloatTimestep = TestModels.EnsureOracle(Path.Combine(Root, "oracle-ft"), new OracleModelOptions(FloatTimestep: true));
        Float16FloatTimestep = TestModels.EnsureOracle(Path.Combine(Root, "oracle-fp16-ft"), new OracleModelOptions(true, true));
    }

    public string Root { get; }

    public string Default { get; }

    public string Float16 { get; }

    public string FloatTimestep { get; }

    public string Float16FloatTimestep { get; }

    public string Variant(bool float16, bool floatTimestep) => (float16, floatTimestep) switch
    {
        (false, false) => Default,
        (true, false) => Float16,
        (false, true) => FloatTimestep,
        (true, true) => Float16FloatTimestep,
    };

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
