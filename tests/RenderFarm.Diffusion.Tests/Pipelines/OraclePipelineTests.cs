using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Schedulers;
using static RenderFarm.Diffusion.Tests.Pipelines.OracleExpectations;

namespace RenderFarm.Diffusion.Tests.Pipelines;

/// <summary>
/// The whole pipeline on the oracle model, whose UNet predicts the exact noise for a known target: a correct engine
/// produces an image that can be computed independently, to within one grey level.
/// </summary>
[Collection(OracleCollection.Name)]
public sealed class OraclePipelineTests(OracleModels models)
{
    private const int LatentHeight = 6;
    private const int LatentWidth = 8;

    [Theory]
    [InlineData(SamplerNames.Euler)]
    [InlineData(SamplerNames.EulerAncestral)]
    [InlineData(SamplerNames.Lms)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    [InlineData(SamplerNames.Lcm)]
    public void Samplers_that_end_at_sigma_zero_render_exactly_the_guided_target(string sampler)
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var request = Request(sampler);

        var image = pipeline.Generate(request, null, CancellationToken.None).Images[0].Image;

        var target = GuidedTarget(pipeline.Tokenizer, "a lighthouse at dusk", "blurry", request.GuidanceScale);
        var expected = Decode(Flat(target, LatentHeight, LatentWidth), LatentHeight, LatentWidth);
        (image.Width, image.Height).ShouldBe((64, 48));
        MaxDifference(image.Pixels, expected).ShouldBeLessThanOrEqualTo(1);
    }

    [Fact]
    public void Karras_sigmas_with_a_float_timestep_model_render_the_guided_target()
    {
        // Karras timesteps are fractional: only a model that takes a float timestep sees them exactly.
        using var pipeline = StableDiffusionPipeline.Open(models.FloatTimestep);
        var request = Request(SamplerNames.DpmPlusPlus2MKarras);

        var image = pipeline.Generate(request, null, CancellationToken.None).Images[0].Image;

        var target = GuidedTarget(pipeline.Tokenizer, "a lighthouse at dusk", "blurry", request.GuidanceScale);
        MaxDifference(image.Pixels, Decode(Flat(target, LatentHeight, LatentWidth), LatentHeight, LatentWidth)).ShouldBeLessThanOrEqualTo(1);
    }

    [Theory]
    [InlineData(SamplerNames.Ddim)]
    [InlineData(SamplerNames.Plms)]
    public void Ddim_and_plms_keep_the_seeded_torch_noise_in_the_closed_form_result(string sampler)
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var request = Request(sampler, seed: 1234);
        var scheduler = SchedulerFactory.Create(sampler, pipeline.Model.Scheduler);
        scheduler.SetTimesteps(request.Steps);

        var image = pipeline.Generate(request, null, CancellationToken.None).Images[0].Image;

        var target = GuidedTarget(pipeline.Tokenizer, "a lighthouse at dusk", "blurry", request.GuidanceScale);
        var start = Noise(1234, LatentHeight, LatentWidth); // InitNoiseSigma is 1 for these samplers
        var expected = Decode(DdimResult(start, scheduler.Timesteps[0], target, LatentHeight, LatentWidth), LatentHeight, LatentWidth);
        MaxDifference(image.Pixels, expected).ShouldBeLessThanOrEqualTo(1);
        MaxDifference(image.Pixels, Decode(Flat(target, LatentHeight, LatentWidth), LatentHeight, LatentWidth))
            .ShouldBeGreaterThan(3, "the seeded noise must still be visible after DDIM, or the test proves nothing about seeds");
    }

    [Fact]
    public void Guidance_moves_the_image_from_the_conditional_target_to_the_guided_one()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);

        var guided = pipeline.Generate(Request(SamplerNames.Euler, guidance: 3.0), null, CancellationToken.None).Images[0].Image;
        var unguided = pipeline.Generate(Request(SamplerNames.Euler, guidance: 1.0), null, CancellationToken.None).Images[0].Image;

        var conditional = Decode(Flat(GuidedTarget(pipeline.Tokenizer, "a lighthouse at dusk", "blurry", 1.0), LatentHeight, LatentWidth), LatentHeight, LatentWidth);
        var withGuidance = Decode(Flat(GuidedTarget(pipeline.Tokenizer, "a lighthouse at dusk", "blurry", 3.0), LatentHeight, LatentWidth), LatentHeight, LatentWidth);
        MaxDifference(conditional, withGuidance).ShouldBeGreaterThan(10, "the test prompt must make guidance visible");
        MaxDifference(unguided.Pixels, conditional).ShouldBeLessThanOrEqualTo(1);
        MaxDifference(guided.Pixels, withGuidance).ShouldBeLessThanOrEqualTo(1);
    }

    [Fact]
    public void Different_prompts_render_different_images()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var a = pipeline.Generate(Request(SamplerNames.Euler), null, CancellationToken.None).Images[0].Image;
        var b = pipeline.Generate(Request(SamplerNames.Euler) with { Images = [new ImageSpec("a red fox in snow", "blurry", 42)] }, null, CancellationToken.None).Images[0].Image;

        MaxDifference(a.Pixels, b.Pixels).ShouldBeGreaterThan(10);
    }

    [Fact]
    public void Same_seed_and_settings_give_byte_identical_png_and_another_seed_does_not()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);

        var first = pipeline.Generate(Request(SamplerNames.Ddim, seed: 7), null, CancellationToken.None).Images[0].ToPng();
        var second = pipeline.Generate(Request(SamplerNames.Ddim, seed: 7), null, CancellationToken.None).Images[0].ToPng();
        var other = pipeline.Generate(Request(SamplerNames.Ddim, seed: 8), null, CancellationToken.None).Images[0].ToPng();

        second.ShouldBe(first);
        other.ShouldNotBe(first);
    }

    [Fact]
    public void A_batch_renders_each_image_from_its_own_seed_as_if_alone()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var batch = Request(SamplerNames.Ddim) with { Images = GenerationRequest.Seeds("a lighthouse at dusk", "blurry", 100, 3) };

        var together = pipeline.Generate(batch, null, CancellationToken.None).Images;
        var alone = pipeline.Generate(Request(SamplerNames.Ddim, seed: 102), null, CancellationToken.None).Images[0];

        together.Count.ShouldBe(3);
        together.Select(i => i.Parameters.Seed).ShouldBe([100UL, 101UL, 102UL]);
        MaxDifference(together[2].Image.Pixels, alone.Image.Pixels).ShouldBeLessThanOrEqualTo(1);
        MaxDifference(together[0].Image.Pixels, together[1].Image.Pixels).ShouldBeGreaterThan(3);
    }

    [Theory]
    [InlineData(0.3)]
    [InlineData(0.8)]
    public void Img2img_follows_the_closed_form_for_its_strength(double strength)
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var source = BlockImage(64, 48);
        var request = Request(SamplerNames.Ddim, seed: 5) with { Mode = GenerationMode.ImageToImage, InitImage = source, Strength = strength };
        var scheduler = SchedulerFactory.Create(SamplerNames.Ddim, pipeline.Model.Scheduler);
        scheduler.SetTimesteps(request.Steps);
        var startIndex = request.Steps - (int)(request.Steps * strength);

        var image = pipeline.Generate(request, null, CancellationToken.None).Images[0].Image;

        var sourceLatent = EncodeBlocks(source);
        var noised = new float[sourceLatent.Length];
        scheduler.AddNoise(sourceLatent, Noise(5, LatentHeight, LatentWidth), startIndex, noised);
        var target = GuidedTarget(pipeline.Tokenizer, "a lighthouse at dusk", "blurry", request.GuidanceScale);
        var expected = Decode(DdimResult(noised, scheduler.Timesteps[startIndex], target, LatentHeight, LatentWidth), LatentHeight, LatentWidth);
        MaxDifference(image.Pixels, expected).ShouldBeLessThanOrEqualTo(1);
    }

    [Fact]
    public void Img2img_strength_changes_the_result()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var request = Request(SamplerNames.Ddim, seed: 5) with { Mode = GenerationMode.ImageToImage, InitImage = BlockImage(64, 48) };

        var low = pipeline.Generate(request with { Strength = 0.2 }, null, CancellationToken.None).Images[0];
        var high = pipeline.Generate(request with { Strength = 0.9 }, null, CancellationToken.None).Images[0];

        MaxDifference(low.Image.Pixels, high.Image.Pixels).ShouldBeGreaterThan(10);
        low.Parameters.DenoisingStrength.ShouldBe(0.2);
    }

    [Fact]
    public void Inpainting_keeps_every_pixel_outside_the_mask_and_repaints_inside()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var source = BlockImage(64, 48);
        var mask = new byte[64 * 48 * 3];
        for (var y = 10; y < 30; y++)
        {
            for (var x = 13; x < 40; x++)
            {
                mask.AsSpan((y * 64 + x) * 3, 3).Fill(255);
            }
        }

        var request = Request(SamplerNames.Euler, seed: 9) with
        {
            Mode = GenerationMode.Inpaint,
            InitImage = source,
            Mask = new RgbImage(64, 48, mask),
            Strength = 1.0,
        };

        var image = pipeline.Generate(request, null, CancellationToken.None).Images[0].Image;

        var target = Decode(Flat(GuidedTarget(pipeline.Tokenizer, "a lighthouse at dusk", "blurry", request.GuidanceScale), LatentHeight, LatentWidth), LatentHeight, LatentWidth);
        for (var i = 0; i < 64 * 48; i++)
        {
            var (x, y) = (i % 64, i / 64);
            var inside = y is >= 10 and < 30 && x is >= 13 and < 40;
            if (!inside)
            {
                image.Pixels.AsSpan(i * 3, 3).ToArray().ShouldBe(source.Pixels.AsSpan(i * 3, 3).ToArray(), $"pixel ({x},{y}) is outside the mask");
            }
            else
            {
                // Euler at strength 1 ends at the target inside the mask.
                MaxDifference(image.Pixels.AsSpan(i * 3, 3), target.AsSpan(i * 3, 3)).ShouldBeLessThanOrEqualTo(1, $"pixel ({x},{y}) is inside the mask");
            }
        }
    }

    [Fact]
    public void A_float16_model_renders_the_same_image_within_half_precision()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Float16);
        var request = Request(SamplerNames.Euler);

        var image = pipeline.Generate(request, null, CancellationToken.None).Images[0].Image;

        var expected = Decode(Flat(GuidedTarget(pipeline.Tokenizer, "a lighthouse at dusk", "blurry", request.GuidanceScale), LatentHeight, LatentWidth), LatentHeight, LatentWidth);
        MaxDifference(image.Pixels, expected).ShouldBeLessThanOrEqualTo(3);
    }

    [Fact]
    public void Progress_is_reported_every_step_with_previews_on_request()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var reports = new List<GenerationProgress>();

        pipeline.Generate(Request(SamplerNames.Euler) with { PreviewInterval = 4 }, new Collect(reports), CancellationToken.None);

        reports.Select(r => r.Step).ShouldBe(Enumerable.Range(1, 12));
        reports.All(r => r.TotalSteps == 12).ShouldBeTrue();
        reports.Where(r => r.Preview is not null).Select(r => r.Step).ShouldBe([4, 8, 12]);
        reports[3].Preview!.Width.ShouldBe(LatentWidth);
    }

    [Fact]
    public void Cancellation_stops_between_steps()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        using var cancel = new CancellationTokenSource();
        var steps = 0;

        Should.Throw<OperationCanceledException>(() => pipeline.Generate(
            Request(SamplerNames.Euler), new Callback(_ => { if (++steps == 3) { cancel.Cancel(); } }), cancel.Token));
        steps.ShouldBe(3);
    }

    [Fact]
    public void The_png_carries_the_parameters_that_made_it()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var png = pipeline.Generate(Request(SamplerNames.EulerAncestral, seed: 31337), null, CancellationToken.None).Images[0].ToPng();

        var text = PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword];
        var parameters = GenerationParameters.Parse(text);

        text.ShouldContain("Sampler: Euler a");
        parameters.ShouldBe(new GenerationParameters
        {
            Prompt = "a lighthouse at dusk",
            NegativePrompt = "blurry",
            Steps = 12,
            Sampler = SamplerNames.EulerAncestral,
            GuidanceScale = 2.0,
            Seed = 31337,
            Width = 64,
            Height = 48,
            Model = pipeline.Model.Name,
        });
        PngCodec.Decode(png).Width.ShouldBe(64);
    }

    private static float[] EncodeBlocks(RgbImage image)
    {
        var plane = LatentHeight * LatentWidth;
        var latent = new float[4 * plane];
        for (var by = 0; by < LatentHeight; by++)
        {
            for (var bx = 0; bx < LatentWidth; bx++)
            {
                var p = ((by * 8) * image.Width + bx * 8) * 3;
                float[] rgb = [image.Pixels[p] / 255f * 2 - 1, image.Pixels[p + 1] / 255f * 2 - 1, image.Pixels[p + 2] / 255f * 2 - 1];
                var z = ModelGenerator.OracleReference.EncodePixel(rgb);
                for (var c = 0; c < 4; c++)
                {
                    latent[c * plane + by * LatentWidth + bx] = z[c] * Scaling;
                }
            }
        }

        return latent;
    }

    private sealed class Collect(List<GenerationProgress> into) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => into.Add(value);
    }

    private sealed class Callback(Action<GenerationProgress> action) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => action(value);
    }
}
