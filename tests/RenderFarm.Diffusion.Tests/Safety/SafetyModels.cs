using RenderFarm.ModelGenerator;
using RenderFarm.ModelGenerator.Safety;

namespace RenderFarm.Diffusion.Tests.Safety;

/// <summary>Oracle model folders with the tiny safety checker at thresholds that flag every image, none, or by its red mean.</summary>
public sealed class SafetyModels : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("renderfarm-safety-").FullName;

    public SafetyModels()
    {
        FlagsEverything = Oracle("flags-everything", -10f);
        FlagsNothing = Oracle("flags-nothing", 10f);
        Checker = Path.Combine(_root, "checker-only");
        TestModels.WriteSafetyChecker(Checker, new TinySafetyCheckerOptions(RedThreshold: 0f));
        WithoutChecker = TestModels.EnsureOracle(Path.Combine(_root, "no-checker"));
    }

    public string FlagsEverything { get; }
    public string FlagsNothing { get; }
    /// <summary>A folder holding only <c>safety_checker/model.onnx</c> at threshold 0.</summary>
    public string Checker { get; }
    public string WithoutChecker { get; }

    private string Oracle(string name, float threshold)
    {
        var directory = Path.Combine(_root, name);
        TestModels.WriteOracle(directory);
        TestModels.WriteSafetyChecker(directory, new TinySafetyCheckerOptions(threshold));
        return directory;
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
