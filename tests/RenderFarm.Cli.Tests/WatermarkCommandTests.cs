using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm render --watermark</c> and <c>renderfarm watermark decode</c> on the oracle model.</summary>
[Collection(CliCollection.Name)]
public sealed class WatermarkCommandTests(CliModels models)
{
    private string Output() => Path.Combine(models.Scratch, "watermark-" + Guid.NewGuid().ToString("N"), "out.png");

    private string[] Render(string output, int size, params string[] extra) =>
        ["render", "a red fox", "--model", models.Oracle, "--width", $"{size}", "--height", $"{size}", "--steps", "2", "--seed", "7", "-o", output, .. extra];

    [Fact]
    public async Task A_rendered_watermark_is_decoded_and_recorded_in_the_png_parameters()
    {
        var output = Output();

        var (renderExit, _, renderError) = await Cli.RunAsync(Render(output, 256, "--watermark", "StableDiffusionV1"));
        var (decodeExit, stdout, decodeError) = await Cli.RunAsync("watermark", "decode", output);

        renderExit.ShouldBe(0, renderError);
        decodeExit.ShouldBe(0, decodeError);
        stdout.Trim().ShouldBe("StableDiffusionV1");
        GenerationParameters.Parse(PngCodec.ReadTextChunks(File.ReadAllBytes(output))["parameters"]).Watermark.ShouldBe("dwtDct");
    }

    [Fact]
    public async Task An_image_without_a_watermark_exits_1()
    {
        var output = Output();
        (await Cli.RunAsync(Render(output, 256))).ExitCode.ShouldBe(0);

        var (exitCode, stdout, stderr) = await Cli.RunAsync("watermark", "decode", output);

        exitCode.ShouldBe(1);
        stdout.Trim().ShouldBeEmpty();
        stderr.ShouldContain("no watermark found");
        PngCodec.ReadTextChunks(File.ReadAllBytes(output))["parameters"].ShouldNotContain("Watermark");
    }

    [Fact]
    public async Task Decoding_a_file_that_is_not_an_image_exits_2()
    {
        var path = Path.Combine(models.Scratch, "not-an-image-" + Guid.NewGuid().ToString("N") + ".png");
        await File.WriteAllTextAsync(path, "hello");

        var (exitCode, _, stderr) = await Cli.RunAsync("watermark", "decode", path);

        exitCode.ShouldBe(2);
        stderr.ShouldContain("not an image");
    }

    [Fact]
    public async Task Decoding_a_missing_file_exits_2()
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("watermark", "decode", Path.Combine(models.Scratch, "missing.png"));

        exitCode.ShouldBe(2);
        stderr.ShouldContain("missing.png");
    }

    [Theory]
    [InlineData(128, "StableDiffusionV1", "256x256")]
    [InlineData(256, "", "1 to 32 bytes")]
    [InlineData(256, "a payload that is longer than thirty-two bytes", "1 to 32 bytes")]
    public async Task A_watermark_that_cannot_be_embedded_exits_2_and_writes_nothing(int size, string text, string message)
    {
        var output = Output();

        var (exitCode, _, stderr) = await Cli.RunAsync(Render(output, size, "--watermark", text));

        exitCode.ShouldBe(2);
        stderr.ShouldContain("watermark");
        stderr.ShouldContain(message);
        File.Exists(output).ShouldBeFalse();
    }
}
