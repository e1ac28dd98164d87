using RenderFarm.Diffusion.Imaging;
using RenderFarm.ModelGenerator;
using RenderFarm.ModelGenerator.Safety;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm render --safety</c> on oracle models with the tiny checker at thresholds that flag every image or none.</summary>
[Collection(CliCollection.Name)]
public sealed class SafetyRenderTests(CliModels models)
{
    private string OracleWithChecker(float threshold)
    {
        var directory = Path.Combine(models.Scratch, "safety-" + Guid.NewGuid().ToString("N"));
        TestModels.WriteOracle(directory);
        TestModels.WriteSafetyChecker(directory, new TinySafetyCheckerOptions(threshold));
        return directory;
    }

    private string Output() => Path.Combine(models.Scratch, "safety-out-" + Guid.NewGuid().ToString("N"), "out.png");

    private static string[] Render(string model, string output, params string[] extra) =>
        ["render", "a red fox", "--model", model, "--width", "64", "--height", "64", "--steps", "2", "--seed", "7", "-o", output, .. extra];

    [Fact]
    public async Task Block_writes_no_file_for_a_flagged_image_and_exits_1()
    {
        var output = Output();

        var (exitCode, _, stderr) = await Cli.RunAsync(Render(OracleWithChecker(-10f), output, "--safety", "block"));

        exitCode.ShouldBe(1);
        stderr.ShouldContain("blocked: image 0");
        File.Exists(output).ShouldBeFalse();
    }

    [Fact]
    public async Task Flag_is_the_default_with_a_checker_and_lands_in_the_png_parameters()
    {
        var output = Output();

        var (exitCode, _, stderr) = await Cli.RunAsync(Render(OracleWithChecker(-10f), output));

        exitCode.ShouldBe(0, stderr);
        GenerationParameters.Parse(PngCodec.ReadTextChunks(File.ReadAllBytes(output))["parameters"]).SafetyChecker.ShouldBe("flagged");
    }

    [Fact]
    public async Task Asking_for_a_check_on_a_model_without_a_checker_exits_2()
    {
        var (exitCode, _, stderr) = await Cli.RunAsync(Render(models.Oracle, Output(), "--safety", "blur"));

        exitCode.ShouldBe(2);
        stderr.ShouldContain("safety_checker/model.onnx");
    }

    [Fact]
    public async Task Models_generate_tiny_safety_writes_a_model_with_a_checker()
    {
        var directory = Path.Combine(models.Scratch, "tiny-safety-" + Guid.NewGuid().ToString("N"));

        (await Cli.RunAsync("models", "generate", "--kind", "tiny-safety", directory)).ExitCode.ShouldBe(0);

        File.Exists(Path.Combine(directory, "safety_checker", "model.onnx")).ShouldBeTrue();
        File.Exists(Path.Combine(directory, "unet", "model.onnx")).ShouldBeTrue();
    }
}
