using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Upscaling;
using RenderFarm.Domain.Tiling;
using RenderFarm.ModelGenerator.Upscaler;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm models generate --kind tiny-upscaler</c> and <c>renderfarm render --hires --upscaler DIR</c>.</summary>
[Collection(CliCollection.Name)]
public sealed class UpscalerCliTests(CliModels models)
{
    private const string Prompt = "a lighthouse at dusk";

    /// <summary>128² from a 64² base (the ×2 model's own pixels: no resampling), 9 tiles of 64 (overlap 16), 2 refinement steps each.</summary>
    internal static readonly string[] Request =
    [
        Prompt, "--seed", "5", "--width", "128", "--height", "128", "--steps", "4", "--sampler", "euler", "--guidance", "7.5",
        "--strength", "0.5", "--tile", "64", "--overlap", "16", "--base-width", "64", "--base-height", "64",
    ];

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public async Task Generate_writes_a_tiny_upscaler_folder_that_records_its_scale(int scale)
    {
        var dir = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"), "up");

        var (exitCode, stdout, stderr) = await Cli.RunAsync("models", "generate", "--kind", "tiny-upscaler", "--scale", scale.ToString(System.Globalization.CultureInfo.InvariantCulture), dir);

        exitCode.ShouldBe(0, stderr);
        stdout.Trim().ShouldBe(Path.GetFullPath(dir));
        var folder = UpscalerFolder.Open(dir);
        folder.Scale.ShouldBe(scale);
        folder.Memory.ShouldNotBeNull();
    }

    [Fact]
    public async Task A_hires_render_with_an_upscaler_refines_the_upscalers_closed_form_output()
    {
        var dir = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"));
        var upscaler = Path.Combine(dir, "tiny-upscaler-x2");
        (await Cli.RunAsync("models", "generate", "--kind", "tiny-upscaler", upscaler)).ExitCode.ShouldBe(0);

        var with = await Cli.RunAsync(["render", .. Request, "--hires", "--model", models.Tiny, "--upscaler", upscaler, "-o", Path.Combine(dir, "with.png")]);
        var without = await Cli.RunAsync(["render", .. Request, "--hires", "--model", models.Tiny, "-o", Path.Combine(dir, "without.png")]);

        with.ExitCode.ShouldBe(0, with.Error);
        without.ExitCode.ShouldBe(0, without.Error);
        with.Output.ShouldContain("upscaler tiny-upscaler-x2 (x2)");
        var png = await File.ReadAllBytesAsync(Path.Combine(dir, "with.png"));
        PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword].ShouldEndWith("Hires tiles: 9, Hires upscaler: tiny-upscaler-x2");
        PngCodec.Decode(png).Pixels.ShouldNotBe(PngCodec.Decode(File.ReadAllBytes(Path.Combine(dir, "without.png"))).Pixels);

        // The same request in process, the base upscaled by the closed form instead of the model: the very same bytes.
        (await ClosedFormRenderAsync(models.Tiny, "tiny-upscaler-x2")).ShouldBe(png);
    }

    [Fact]
    public async Task A_folder_that_is_not_an_upscaler_exits_2_and_says_why()
    {
        var output = Path.Combine(models.Scratch, Guid.NewGuid().ToString("N"), "never.png");

        var (exitCode, _, stderr) = await Cli.RunAsync(["render", .. Request, "--hires", "--model", models.Tiny, "--upscaler", models.Tiny, "-o", output]);

        exitCode.ShouldBe(2);
        stderr.ShouldContain("renderfarm-upscaler.json");
        File.Exists(output).ShouldBeFalse();
    }

    /// <summary><see cref="Request"/> rendered by the engine with the closed form as the base upscaler; the PNG's bytes.</summary>
    internal static async Task<byte[]> ClosedFormRenderAsync(string model, string upscalerName)
    {
        var hires = HiresRequestRules.Resolve(new HiresSpec(128, 128, 64, 16, 0.5, 64, 64));
        using var pipeline = StableDiffusionPipeline.Open(model);
        var request = new HiresRequest
        {
            Layout = HiresLayouts.FromGrid(hires.CreateGrid(), 5, Prompt),
            Prompt = Prompt,
            Seed = 5,
            BaseWidth = 64,
            BaseHeight = 64,
            Settings = new RefineSettings { Steps = 4, GuidanceScale = 7.5, Sampler = "euler", Strength = 0.5 },
            Upscaler = upscalerName,
        };
        using var png = new MemoryStream();
        await new HiresPipeline(pipeline, new ClosedFormUpscaler(upscalerName)).RenderAsync(request, png, null, CancellationToken.None);
        return png.ToArray();
    }

    private sealed class ClosedFormUpscaler(string name) : IBaseUpscaler
    {
        public string? Name => name;

        public RgbImage UpscaleRegion(RgbImage baseImage, int targetWidth, int targetHeight, PixelRect region, CancellationToken cancellationToken)
        {
            var scale = targetWidth / baseImage.Width;
            var whole = TinyUpscaler.Reference(baseImage.Pixels, baseImage.Width, baseImage.Height, scale);
            var pixels = new byte[region.Width * region.Height * 3];
            for (var y = 0; y < region.Height; y++)
            {
                Array.Copy(whole, ((region.Y + y) * targetWidth + region.X) * 3, pixels, y * region.Width * 3, region.Width * 3);
            }

            return new RgbImage(region.Width, region.Height, pixels);
        }
    }
}
