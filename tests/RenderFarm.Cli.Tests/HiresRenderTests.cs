using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Cli.Tests;

[Collection(CliCollection.Name)]
public sealed class HiresRenderTests(CliModels models)
{
    [Fact]
    public async Task A_size_over_the_txt2img_limit_renders_through_hires_tiles_and_records_them()
    {
        // 4096×1032 is over the 2048² txt2img pixel limit, so it must go through hires; the oracle keeps it cheap.
        var output = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"), "wide.png");

        var (exitCode, stdout, stderr) = await Cli.RunAsync("render", "a harbour at night", "--model", models.Oracle, "--seed", "3",
            "--width", "4096", "--height", "1032", "--steps", "2", "--sampler", "euler", "--tile", "1024", "--overlap", "64",
            "--base-width", "512", "--base-height", "128", "-o", output);

        exitCode.ShouldBe(0, stderr);
        stdout.ShouldContain("hires from a 512x128 base");
        var png = await File.ReadAllBytesAsync(output);
        var text = PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword];
        var parameters = GenerationParameters.Parse(text);
        (parameters.Width, parameters.Height, parameters.Seed).ShouldBe((4096, 1032, 3UL));
        text.ShouldContain("Hires tile: 1024, Hires overlap: 64");
        var image = PngCodec.Decode(png);
        (image.Width, image.Height).ShouldBe((4096, 1032));
        File.Exists(output + ".partial").ShouldBeFalse();
    }

    [Fact]
    public async Task The_hires_flag_tiles_a_small_image_and_the_same_seed_gives_the_same_bytes()
    {
        var dir = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"));
        string[] common = ["render", "a red fox", "--model", models.Oracle, "--seed", "9", "--width", "256", "--height", "192",
            "--steps", "4", "--sampler", "ddim", "--hires", "--tile", "128", "--overlap", "32", "--strength", "0.5"];

        var first = await Cli.RunAsync([.. common, "-o", Path.Combine(dir, "a.png")]);
        first.ExitCode.ShouldBe(0, first.Error);
        (await Cli.RunAsync([.. common, "-o", Path.Combine(dir, "b.png")])).ExitCode.ShouldBe(0);

        first.Output.ShouldContain("6 tiles of 128 (overlap 32) at strength 0.5");
        File.ReadAllBytes(Path.Combine(dir, "b.png")).ShouldBe(File.ReadAllBytes(Path.Combine(dir, "a.png")));
        GenerationParameters.Parse(PngCodec.ReadTextChunks(File.ReadAllBytes(Path.Combine(dir, "a.png")))[PngCodec.ParametersKeyword])
            .DenoisingStrength.ShouldBe(0.5);
    }

    [Fact]
    public async Task An_init_image_is_upscaled_as_the_base_instead_of_rendering_one()
    {
        var dir = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var init = Path.Combine(dir, "init.png");
        await File.WriteAllBytesAsync(init, PngCodec.Encode(new RgbImage(64, 64, [.. Enumerable.Range(0, 64 * 64 * 3).Select(i => (byte)(i % 251))]), null));

        var (exitCode, stdout, stderr) = await Cli.RunAsync("render", "a red fox", "--model", models.Oracle, "--mode", "img2img", "--init", init,
            "--hires", "--width", "256", "--height", "256", "--tile", "128", "--steps", "2", "-o", Path.Combine(dir, "up.png"));

        exitCode.ShouldBe(0, stderr);
        stdout.ShouldContain("from a 64x64 init base");
    }

    [Theory]
    [InlineData("tile", "--tile 100")]
    [InlineData("overlap", "--overlap 300")]
    [InlineData("width", "--width 70000")]
    [InlineData("baseHeight", "--base-width 512")]
    [InlineData("strength", "--strength 0")]
    [InlineData("steps", "--steps 0")]
    public async Task Bad_hires_input_exits_with_2_and_names_the_field(string field, string options)
    {
        var output = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"), "never.png");
        string[] size = options.StartsWith("--width", StringComparison.Ordinal) ? ["--height", "1024"] : ["--width", "1024", "--height", "1024"];

        var (exitCode, _, stderr) = await Cli.RunAsync(["render", "x", "--model", models.Oracle, "--hires", .. size, .. options.Split(' '), "-o", output]);

        exitCode.ShouldBe(2);
        stderr.ShouldContain($"error: {field}:");
        File.Exists(output).ShouldBeFalse();
    }

    [Fact]
    public async Task Hires_refuses_inpainting()
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("render", "x", "--model", models.Oracle, "--hires", "--mode", "inpaint", "--width", "256", "--height", "256");

        exitCode.ShouldBe(2);
        stderr.ShouldContain("error: mode:");
    }
}
