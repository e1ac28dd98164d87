using RenderFarm.Onnx;

namespace RenderFarm.ModelGenerator.Tests;

/// <summary>
/// The checks of onnx's checker that ONNX Runtime does not enforce on load (no onnx package is available here),
/// so the files also pass <c>onnx.checker.check_model</c> in tools such as diffusers and Optimum.
/// </summary>
public sealed class GraphStructureTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "renderfarm-structure-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
    }

    public static TheoryData<string> Kinds => ["oracle", "oracle-fp16-float-timestep", "tiny"];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Graphs_are_topologically_ordered_with_unique_names_and_one_value_per_attribute(string kind)
    {
        string dir = kind switch
        {
            "oracle" => TestModels.EnsureOracle(Path.Combine(root, kind)),
            "tiny" => TestModels.EnsureTiny(Path.Combine(root, kind)),
            _ => TestModels.EnsureOracle(Path.Combine(root, kind), new OracleModelOptions(true, true)),
        };

        foreach (string file in new[] { ModelNames.TextEncoderFile, ModelNames.UnetFile, ModelNames.VaeDecoderFile, ModelNames.VaeEncoderFile })
        {
            var graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir, file))).Graph;
            var defined = new HashSet<string>(StringComparer.Ordinal) { "" };
            foreach (var input in graph.Input)
            {
                defined.Add(input.Name).ShouldBeTrue($"{file}: duplicate input {input.Name}");
            }

            foreach (var initializer in graph.Initializer)
            {
                defined.Add(initializer.Name).ShouldBeTrue($"{file}: duplicate initializer {initializer.Name}");
            }

            var nodeNames = new HashSet<string>(StringComparer.Ordinal);
            foreach (var node in graph.Node)
            {
                nodeNames.Add(node.Name).ShouldBeTrue($"{file}: duplicate node {node.Name}");
                node.Input.ShouldAllBe(i => defined.Contains(i), $"{file}: {node.Name} reads an undefined value");
                foreach (var output in node.Output)
                {
                    defined.Add(output).ShouldBeTrue($"{file}: {output} is written twice");
                }

                foreach (var attribute in node.Attribute)
                {
                    int values = (attribute.HasF ? 1 : 0) + (attribute.HasI ? 1 : 0) + (attribute.HasS ? 1 : 0)
                        + (attribute.T is null ? 0 : 1) + (attribute.G is null ? 0 : 1)
                        + (attribute.Floats.Count > 0 || attribute.Type == AttributeProto.Types.AttributeType.Floats ? 1 : 0)
                        + (attribute.Ints.Count > 0 || attribute.Type == AttributeProto.Types.AttributeType.Ints ? 1 : 0)
                        + (attribute.Strings.Count > 0 || attribute.Type == AttributeProto.Types.AttributeType.Strings ? 1 : 0);
                    values.ShouldBe(1, $"{file}: {node.Name}.{attribute.Name}");
                }
            }

            graph.Output.ShouldAllBe(o => defined.Contains(o.Name));
        }
    }
}
