using System.Globalization;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.ModelGenerator;
using Xunit.Abstractions;
using static RenderFarm.Diffusion.Tests.Hires.HiresTestKit;

namespace RenderFarm.Diffusion.Tests.Hires;

/// <summary>The tiny model (SD's structure, random weights), generated once into a temporary folder.</summary>
public sealed class TinyModel : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("renderfarm-hires-tiny-").FullName;

    public TinyModel() => Path = TestModels.EnsureTiny(System.IO.Path.Combine(_root, "tiny-sd"));

    public string Path { get; }

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

/// <summary>
/// Hires on a model with real spatial context, where tiles are NOT expected to equal the untiled render: the seams must
/// still not show, and the difference from the untiled render is measured (PSNR), not bounded — a random-weight model
/// has no notion of a good image. <c>RENDERFARM_HIRES_SIZE</c> (default 256) sets the side; docs/hires.md reports 512.
/// </summary>
public sealed class TinyHiresTests(TinyModel model, ITestOutputHelper output) : IClassFixture<TinyModel>
{
    [Fact]
    public async Task Tiled_refinement_shows_no_seams_and_its_distance_from_the_untiled_render_is_reported()
    {
        var side = int.TryParse(Environment.GetEnvironmentVariable("RENDERFARM_HIRES_SIZE"), CultureInfo.InvariantCulture, out var s) ? s : 256;
        var tile = side / 2;
        var overlap = tile / 4;
        using var pipeline = StableDiffusionPipeline.Open(model.Path);
        var settings = new RefineSettings { Steps = 8, GuidanceScale = 7.5, Sampler = SamplerNames.Euler, Strength = 0.5, NegativePrompt = "blurry" };
        var layout = Layout(side, side, tile, overlap, jobSeed: 7, "a lighthouse at dusk");
        var request = new HiresRequest { Layout = layout, Prompt = "a lighthouse at dusk", Seed = 7, BaseWidth = side / 2, BaseHeight = side / 2, Settings = settings };

        using var png = new MemoryStream();
        var result = await new HiresPipeline(pipeline).RenderAsync(request, png, null, CancellationToken.None);
        var tiled = PngCodec.Decode(png.ToArray());

        var untiled = pipeline.Generate(new GenerationRequest
        {
            Images = [new ImageSpec(request.Prompt, settings.NegativePrompt, request.Seed)],
            Width = side,
            Height = side,
            Steps = settings.Steps,
            GuidanceScale = settings.GuidanceScale,
            Sampler = settings.Sampler,
            Mode = GenerationMode.ImageToImage,
            InitImage = RegionUpscaler.Upscale(result.BaseImage, side, side),
            Strength = settings.Strength,
        }, null, CancellationToken.None).Images[0].Image;

        var seams = SeamMetrics.Measure(tiled, layout);
        var untiledSeams = SeamMetrics.Measure(untiled, layout);
        var everyLine = SeamMetrics.Measure(tiled, layout, gridPeriod: 1);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{side}² from a {side / 2}² base, {layout.Tiles.Count} tiles of {tile} (overlap {overlap}), {settings.Steps} steps euler at strength {settings.Strength}: " +
            $"PSNR tiled vs untiled {Psnr(tiled, untiled):0.00} dB; seam ratio tiled {seams.Ratio:0.000} (median {seams.MedianGradient:0.00}, worst {seams.WorstBoundaryGradient:0.00} at {(seams.WorstIsVertical ? "x" : "y")}={seams.WorstBoundary}), " +
            $"same lines in the untiled render {untiledSeams.Ratio:0.000}; against every line (not only the latent grid's) {everyLine.Ratio:0.000}"));
        // A random-weight model's texture varies from line to line by more than 20% by chance: the untiled render, at
        // the very same lines, measures about as high (1.22–1.26 at 256² and 512²). So the bound is the issue's 1.2, or
        // what those lines show without any tiling (10% slack), whichever is larger: a real seam exceeds both.
        seams.Ratio.ShouldBeLessThanOrEqualTo(Math.Max(1.2, untiledSeams.Ratio * 1.1));
    }

    private static double Psnr(RgbImage a, RgbImage b)
    {
        var mse = a.Pixels.Zip(b.Pixels, (x, y) => (double)(x - y) * (x - y)).Average();
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }
}
