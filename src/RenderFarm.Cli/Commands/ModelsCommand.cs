using System.CommandLine;
using RenderFarm.ModelGenerator;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm models generate</c>: writes the project's own small models (no download needed).</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var kind = new Option<string>("--kind") { Description = "tiny (random-weight SD architecture) or oracle (exact math for tests).", DefaultValueFactory = _ => "tiny" };
        kind.AcceptOnlyFromAmong("tiny", "oracle");
        var output = new Argument<string>("directory") { Description = "Folder to write the model into." };
        var generate = new Command("generate", "Write a generated test model in the diffusers ONNX layout.") { kind, output };
        generate.SetAction(result =>
        {
            var directory = result.GetRequiredValue(output);
            if (result.GetValue(kind) == "oracle")
            {
                TestModels.WriteOracle(directory);
            }
            else
            {
                TestModels.WriteTiny(directory);
            }

            result.Out().WriteLine(Path.GetFullPath(directory));
            return ExitCodes.Success;
        });

        return new Command("models", "Model folders.") { generate };
    }
}
