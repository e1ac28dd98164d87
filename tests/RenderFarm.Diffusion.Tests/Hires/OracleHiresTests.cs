using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.Diffusion.Tests.Pipelines;
using RenderFarm.ModelGenerator;
using static RenderFarm.Diffusion.Tests.Hires.HiresTestKit;

namespace RenderFarm.Diffusion.Tests.Hires;

/// <summary>
/// Hires on the oracle model, which has no spatial context: its UNet pulls every latent cell towards the same
/// position-independent target μ and its VAE is per-pixel, so a tile rendered alone is exactly the same pixels as that
/// region rendered as part of the whole image. Any difference between the tiled result and the untiled prediction is
/// therefore the tiling's own doing: a tile cut from the wrong place, a wrong seed, a weight that does not sum to 1, a
/// row stitched twice.
/// </summary>
[Collection(OracleCollection.Name)]
public sealed class OracleHiresTests(OracleModels models)
{
    private const string Prompt = "a lighthouse at dusk";
    private const string Negative = "blurry";
    private const ulong JobSeed = 42;

    [Fact]
    public async Task Euler_hires_equals_the_untiled_img2img_of_the_same_upscaled_base()
    {
        // Euler ends every trajectory at the model's x0 prediction, which on the oracle is μ whatever the noise: so
        // the tiles' own seeds drop out and tiled and untiled img2img must agree exactly, pixel for pixel. This checks
        // coverage, weight sums and the row-by-row assembly end to end (base render included); the DDIM test below,
        // whose result keeps each tile's noise and source, checks placement.
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var settings = Settings(SamplerNames.Euler, steps: 8, strength: 0.5);
        var request = new HiresRequest { Layout = Layout(256, 256, 128, 32, (long)JobSeed, Prompt), Prompt = Prompt, Seed = JobSeed, BaseWidth = 128, BaseHeight = 128, Settings = settings };

        var (tiled, result) = await RenderAsync(pipeline, request);

        var upscaled = RegionUpscaler.Upscale(result.BaseImage, 256, 256);
        var untiled = pipeline.Generate(new GenerationRequest
        {
            Images = [new ImageSpec(Prompt, Negative, JobSeed)],
            Width = 256,
            Height = 256,
            Steps = settings.Steps,
            GuidanceScale = settings.GuidanceScale,
            Sampler = settings.Sampler,
            Mode = GenerationMode.ImageToImage,
            InitImage = upscaled,
            Strength = settings.Strength,
        }, null, CancellationToken.None).Images[0].Image;
        MaxDifference(tiled, untiled).ShouldBe(0);
        var mu = OracleExpectations.GuidedTarget(pipeline.Tokenizer, Prompt, Negative, settings.GuidanceScale);
        tiled.Pixels.ShouldBe(OracleExpectations.Decode(OracleExpectations.Flat(mu, 32, 32), 32, 32));
    }

    [Fact]
    public async Task Ddim_hires_equals_the_closed_form_of_each_tile_blended_at_its_place()
    {
        // DDIM (η = 0) on the oracle ends at √ᾱ·μ + √(1−ᾱ)·e with e the tile's effective noise, which carries both the
        // tile's seeded torch noise and its source pixels (strength 0.05 keeps the source dominant). Every tile is
        // predicted from the oracle's published math, from the crop of the WHOLE upscaled base (not the engine's region
        // path) and the tile's derived seed, then blended by the textbook formula; the engine must match to a grey level.
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var settings = Settings(SamplerNames.Ddim, steps: 20, strength: 0.05);
        var layout = Layout(256, 192, 128, 32, (long)JobSeed, Prompt);
        var baseImage = Picture(64, 48, seed: 7);
        var request = new HiresRequest { Layout = layout, Prompt = Prompt, Seed = JobSeed, BaseImage = baseImage, Settings = settings };

        var (tiled, _) = await RenderAsync(pipeline, request);

        var scheduler = SchedulerFactory.Create(SamplerNames.Ddim, pipeline.Model.Scheduler);
        scheduler.SetTimesteps(settings.Steps);
        var startIndex = settings.Steps - Math.Max(1, (int)(settings.Steps * settings.Strength));
        var mu = OracleExpectations.GuidedTarget(pipeline.Tokenizer, Prompt, Negative, settings.GuidanceScale);
        var whole = RegionUpscaler.Upscale(baseImage, layout.Width, layout.Height);
        var expectedTiles = layout.Tiles.Select(t =>
        {
            var (lh, lw) = (t.Bounds.Height / 8, t.Bounds.Width / 8);
            var source = EncodeAveraged(Crop(whole, t.Bounds));
            var noised = new float[source.Length];
            scheduler.AddNoise(source, OracleExpectations.Noise(t.Seed, lh, lw), startIndex, noised);
            var latent = OracleExpectations.DdimResult(noised, scheduler.Timesteps[startIndex], mu, lh, lw);
            return new RgbImage(t.Bounds.Width, t.Bounds.Height, OracleExpectations.Decode(latent, lh, lw));
        }).ToArray();
        var expected = ReferenceStitch(layout, expectedTiles);

        MaxDifference(tiled, expected).ShouldBeLessThanOrEqualTo(1);
        // The prediction must be sensitive to what it checks: the source shows (not a flat μ) and so do the tile seeds.
        MaxDifference(tiled, new RgbImage(256, 192, OracleExpectations.Decode(OracleExpectations.Flat(mu, 24, 32), 24, 32))).ShouldBeGreaterThan(20);
        var swapped = ReferenceStitch(layout, [expectedTiles[1], expectedTiles[0], .. expectedTiles[2..]]);
        MaxDifference(tiled, swapped).ShouldBeGreaterThan(5);
    }

    [Fact]
    public async Task The_png_carries_the_job_parameters_and_the_tiling()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var request = new HiresRequest
        {
            Layout = Layout(192, 128, 128, 32, (long)JobSeed, Prompt),
            Prompt = Prompt,
            Seed = JobSeed,
            BaseWidth = 96,
            BaseHeight = 64,
            Settings = Settings(SamplerNames.Euler, steps: 2, strength: 0.5),
        };
        using var output = new MemoryStream();

        await new HiresPipeline(pipeline).RenderAsync(request, output, null, CancellationToken.None);

        var text = PngCodec.ReadTextChunks(output.ToArray())[PngCodec.ParametersKeyword];
        var parameters = GenerationParameters.Parse(text);
        (parameters.Width, parameters.Height, parameters.Seed, parameters.Prompt, parameters.DenoisingStrength).ShouldBe((192, 128, JobSeed, Prompt, (double?)0.5));
        text.ShouldContain("Hires base: 96x64, Hires tile: 128, Hires overlap: 32, Hires tiles: 2");
    }

    [Fact]
    public async Task Progress_reports_every_tile_and_cancellation_stops_between_tiles()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var request = new HiresRequest
        {
            Layout = Layout(256, 256, 128, 32, (long)JobSeed, Prompt),
            Prompt = Prompt,
            Seed = JobSeed,
            BaseWidth = 64,
            BaseHeight = 64,
            Settings = Settings(SamplerNames.Euler, steps: 4, strength: 0.5),
        };
        var reports = new List<HiresProgress>();
        using (var output = new MemoryStream())
        {
            await new HiresPipeline(pipeline).RenderAsync(request, output, new TileStitcherTests.Inline<HiresProgress>(reports.Add), CancellationToken.None);
        }

        reports.Where(r => r.Stage == HiresStage.Base).Select(r => r.Step).ShouldBe([1, 2, 3, 4]);
        reports.Where(r => r.Stage == HiresStage.Tile && r.TotalSteps == 0).Select(r => r.TilesDone).ShouldBe(Enumerable.Range(1, 9));
        reports.Where(r => r.Stage == HiresStage.Tile && r.TotalSteps > 0).Count().ShouldBe(9 * 2);

        using var cancel = new CancellationTokenSource();
        var cancelAfterFirstTile = new TileStitcherTests.Inline<HiresProgress>(r =>
        {
            if (r.Stage == HiresStage.Tile && r.TilesDone == 1)
            {
                cancel.Cancel();
            }
        });
        using var partial = new MemoryStream();
        await Should.ThrowAsync<OperationCanceledException>(() => new HiresPipeline(pipeline).RenderAsync(request, partial, cancelAfterFirstTile, cancel.Token));
    }

    [Fact]
    public async Task The_same_request_renders_the_same_bytes()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var request = new HiresRequest
        {
            Layout = Layout(192, 192, 128, 32, (long)JobSeed, Prompt),
            Prompt = Prompt,
            Seed = JobSeed,
            BaseImage = Picture(64, 64),
            Settings = Settings(SamplerNames.Ddim, steps: 10, strength: 0.3),
        };

        using var first = new MemoryStream();
        using var second = new MemoryStream();
        await new HiresPipeline(pipeline).RenderAsync(request, first, null, CancellationToken.None);
        await new HiresPipeline(pipeline).RenderAsync(request, second, null, CancellationToken.None);

        second.ToArray().ShouldBe(first.ToArray());
    }

    private static RefineSettings Settings(string sampler, int steps, double strength) => new()
    {
        Steps = steps,
        GuidanceScale = 2.0,
        Sampler = sampler,
        Strength = strength,
        NegativePrompt = Negative,
    };

    private static async Task<(RgbImage Image, HiresResult Result)> RenderAsync(StableDiffusionPipeline pipeline, HiresRequest request)
    {
        using var output = new MemoryStream();
        var result = await new HiresPipeline(pipeline).RenderAsync(request, output, null, CancellationToken.None);
        return (PngCodec.Decode(output.ToArray()), result);
    }

    /// <summary>The oracle VAE encoder: average each 8×8 block in [-1, 1], map it by E, scale by 0.18215.</summary>
    private static float[] EncodeAveraged(RgbImage image)
    {
        var (lh, lw) = (image.Height / 8, image.Width / 8);
        var plane = lh * lw;
        var latent = new float[4 * plane];
        for (var by = 0; by < lh; by++)
        {
            for (var bx = 0; bx < lw; bx++)
            {
                var rgb = new float[3];
                for (var y = 0; y < 8; y++)
                {
                    for (var x = 0; x < 8; x++)
                    {
                        for (var c = 0; c < 3; c++)
                        {
                            rgb[c] += image.Pixels[((by * 8 + y) * image.Width + bx * 8 + x) * 3 + c] / 255f * 2 - 1;
                        }
                    }
                }

                var z = OracleReference.EncodePixel([rgb[0] / 64, rgb[1] / 64, rgb[2] / 64]);
                for (var c = 0; c < 4; c++)
                {
                    latent[c * plane + by * lw + bx] = z[c] * OracleExpectations.Scaling;
                }
            }
        }

        return latent;
    }
}
