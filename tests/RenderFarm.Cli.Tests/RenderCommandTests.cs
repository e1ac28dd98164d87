using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Cli.Tests;

[Collection(CliCollection.Name)]
public sealed class RenderCommandTests(CliModels models)
{
    [Fact]
    public async Task Render_writes_a_png_with_its_parameters_and_prints_the_path()
    {
        var output = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"), "out.png");

        var (exitCode, stdout, stderr) = await Cli.RunAsync("render", "a lighthouse at dusk", "--model", models.Tiny, "--seed", "42",
            "--width", "64", "--height", "64", "--steps", "2", "-o", output);

        exitCode.ShouldBe(0, stderr);
        stdout.ShouldContain(Path.GetFullPath(output));
        var png = await File.ReadAllBytesAsync(output);
        var parameters = GenerationParameters.Parse(PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword]);
        parameters.Prompt.ShouldBe("a lighthouse at dusk");
        parameters.Seed.ShouldBe(42UL);
        parameters.Steps.ShouldBe(2);
        parameters.Model.ShouldBe("tiny-sd");
    }

    [Fact]
    public async Task Render_with_count_numbers_the_files_and_steps_the_seeds()
    {
        var output = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"), "batch.png");

        var (exitCode, _, stderr) = await Cli.RunAsync("render", "a red fox", "--model", models.Oracle, "--seed", "10", "--count", "3", "--batch", "2",
            "--width", "64", "--height", "64", "--steps", "3", "-o", output);

        exitCode.ShouldBe(0, stderr);
        var seeds = Enumerable.Range(0, 3)
            .Select(i => GenerationParameters.Parse(PngCodec.ReadTextChunks(File.ReadAllBytes(Path.Combine(Path.GetDirectoryName(output)!, $"batch-{i}.png")))[PngCodec.ParametersKeyword]).Seed);
        seeds.ShouldBe([10UL, 11UL, 12UL]);
    }

    [Fact]
    public async Task Same_seed_renders_identical_files()
    {
        var dir = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"));
        string[] common = ["render", "same seed", "--model", models.Oracle, "--seed", "5", "--width", "64", "--height", "64", "--steps", "4"];

        (await Cli.RunAsync([.. common, "-o", Path.Combine(dir, "a.png")])).ExitCode.ShouldBe(0);
        (await Cli.RunAsync([.. common, "-o", Path.Combine(dir, "b.png")])).ExitCode.ShouldBe(0);

        File.ReadAllBytes(Path.Combine(dir, "b.png")).ShouldBe(File.ReadAllBytes(Path.Combine(dir, "a.png")));
    }

    [Theory]
    [InlineData("width", "--width", "100")]
    [InlineData("height", "--height", "60")]
    [InlineData("steps", "--steps", "0")]
    [InlineData("steps", "--steps", "1001")]
    [InlineData("guidanceScale", "--guidance", "NaN")]
    [InlineData("sampler", "--sampler", "heun")]
    [InlineData("count", "--count", "0")]
    public async Task Bad_input_exits_with_2_and_names_the_field(string field, string option, string value)
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("render", "x", "--model", models.Oracle, option, value, "-o", Path.Combine(models.Scratch, "never.png"));

        exitCode.ShouldBe(2);
        stderr.ShouldContain($"error: {field}:");
        File.Exists(Path.Combine(models.Scratch, "never.png")).ShouldBeFalse();
    }

    [Theory]
    [InlineData("--width", "abc")]
    [InlineData("--steps", "1.5")]
    [InlineData("--no-such-option", "1")]
    public async Task A_malformed_command_line_exits_with_2_and_the_parser_message(string option, string value)
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("render", "x", option, value);

        exitCode.ShouldBe(2);
        stderr.ShouldContain("error:");
        stderr.ShouldContain("renderfarm render --help");
    }

    [Fact]
    public async Task An_unknown_sampler_lists_the_valid_ones()
    {
        var (_, _, stderr) = await Cli.RunAsync("render", "x", "--model", models.Oracle, "--sampler", "heun");
        stderr.ShouldContain("dpmpp_2m_karras");
    }

    [Fact]
    public async Task A_missing_model_folder_exits_with_2_and_explains_the_layout()
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("render", "x", "--model", Path.Combine(models.Scratch, "no-such-model"), "--width", "64", "--height", "64");

        exitCode.ShouldBe(2);
        stderr.ShouldContain("does not exist");
        stderr.ShouldContain("unet/model.onnx");
    }

    [Fact]
    public async Task A_missing_init_image_exits_with_2()
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("render", "x", "--model", models.Oracle, "--mode", "img2img", "--init", Path.Combine(models.Scratch, "none.png"),
            "--width", "64", "--height", "64");

        exitCode.ShouldBe(2);
        stderr.ShouldContain("none.png");
    }

    [Fact]
    public async Task A_prompt_longer_than_77_tokens_warns_and_names_what_was_dropped()
    {
        var prompt = string.Join(' ', Enumerable.Repeat("word", 20)) + " the very end";
        var (exitCode, _, stderr) = await Cli.RunAsync("render", prompt, "--model", models.Oracle, "--width", "64", "--height", "64", "--steps", "1",
            "-o", Path.Combine(models.Scratch, Guid.NewGuid().ToString("N") + ".png"));

        exitCode.ShouldBe(0, stderr);
        stderr.ShouldContain("longer than CLIP's 77 tokens");
        stderr.ShouldContain("end");
    }

    [Fact]
    public async Task Img2img_renders_from_an_init_image()
    {
        var dir = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var init = Path.Combine(dir, "init.png");
        await File.WriteAllBytesAsync(init, PngCodec.Encode(new RgbImage(64, 64, Enumerable.Repeat((byte)128, 64 * 64 * 3).ToArray()), null));

        var (exitCode, _, stderr) = await Cli.RunAsync("render", "x", "--model", models.Oracle, "--mode", "img2img", "--init", init, "--strength", "0.5",
            "--width", "64", "--height", "64", "--steps", "4", "-o", Path.Combine(dir, "out.png"));

        exitCode.ShouldBe(0, stderr);
        GenerationParameters.Parse(PngCodec.ReadTextChunks(File.ReadAllBytes(Path.Combine(dir, "out.png")))[PngCodec.ParametersKeyword])
            .DenoisingStrength.ShouldBe(0.5);
    }
}
