using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Safety;

namespace RenderFarm.Diffusion.Tests.Safety;

/// <summary>
/// The safety checker: CLIP's preprocessing, the checker's verdict on images built to land on either side of the tiny
/// checker's rule (mean of the normalised red channel of the centre crop above 0, i.e. red above 0.48145466 of full
/// scale, 122.77 grey levels), and what each mode does to a render.
/// </summary>
public sealed class SafetyCheckerTests(SafetyModels models) : IClassFixture<SafetyModels>
{
    private static RgbImage Uniform(int width, int height, byte r, byte g, byte b)
    {
        var pixels = new byte[width * height * 3];
        for (var i = 0; i < pixels.Length; i += 3)
        {
            pixels[i] = r;
            pixels[i + 1] = g;
            pixels[i + 2] = b;
        }

        return new RgbImage(width, height, pixels);
    }

    private static GenerationRequest Request(SafetyMode? safety) => new()
    {
        Images = GenerationRequest.Seeds("a lighthouse at dusk", "", 42, 2),
        Width = 64,
        Height = 64,
        Steps = 2,
        Sampler = "euler",
        Safety = safety,
    };

    [Theory]
    [InlineData(512, 512, 224, 224)]
    [InlineData(512, 256, 448, 224)]
    [InlineData(200, 600, 224, 672)]
    [InlineData(640, 480, 298, 224)]
    public void The_shortest_side_becomes_224(int width, int height, int expectedWidth, int expectedHeight) =>
        ClipImageProcessor.ResizedSize(width, height).ShouldBe((expectedWidth, expectedHeight));

    [Fact]
    public void A_uniform_image_is_normalised_with_clips_mean_and_std()
    {
        var planes = ClipImageProcessor.Preprocess(Uniform(300, 200, 255, 128, 0));

        planes.Length.ShouldBe(3 * 224 * 224);
        planes[0].ShouldBe((1f - 0.48145466f) / 0.26862954f, 1e-6f);
        planes[224 * 224 + 5].ShouldBe((128f / 255f - 0.4578275f) / 0.26130258f, 1e-6f);
        planes[^1].ShouldBe((0f - 0.40821073f) / 0.27577711f, 1e-6f);
    }

    [Fact]
    public void The_bicubic_resize_keeps_a_constant_image_constant_and_a_linear_ramp_near_linear()
    {
        var ramp = new byte[256 * 4 * 3];
        for (var x = 0; x < 256; x++)
        {
            for (var y = 0; y < 4; y++)
            {
                ramp[(y * 256 + x) * 3] = (byte)x;
            }
        }

        var resized = ClipImageProcessor.ResizeBicubic(new RgbImage(256, 4, ramp), 128, 4);

        // Away from the borders a cubic filter reproduces a linear ramp: output x samples source x·2 + 0.5.
        for (var x = 4; x < 124; x++)
        {
            ((int)resized.Pixels[x * 3]).ShouldBeInRange(2 * x, 2 * x + 1);
        }

        ClipImageProcessor.ResizeBicubic(Uniform(97, 61, 10, 20, 30), 224, 141).Pixels.ShouldAllBe(p => p == 10 || p == 20 || p == 30);
    }

    [Theory]
    [InlineData(255, true)]
    [InlineData(123, true)]
    [InlineData(122, false)]
    [InlineData(0, false)]
    public void The_tiny_checker_flags_exactly_above_clips_mean_red(byte red, bool flagged)
    {
        using var checker = new SafetyChecker(SafetyChecker.PathIn(models.Checker), ExecutionOptions.Default);

        checker.Check([Uniform(64, 48, red, 0, 255)]).ShouldBe([flagged]);
    }

    [Fact]
    public void Only_the_centre_crop_is_checked()
    {
        // 448x224 with red outer quarters and a black centre: resized it is already 448x224, and the crop keeps
        // columns 112..335, all black. Averaged over the whole width the red mean would be 127.5 and flag.
        var image = Uniform(448, 224, 0, 0, 0);
        for (var y = 0; y < 224; y++)
        {
            for (var x = 0; x < 448; x++)
            {
                if (x < 112 || x >= 336)
                {
                    image.Pixels[(y * 448 + x) * 3] = 255;
                }
            }
        }

        using var checker = new SafetyChecker(SafetyChecker.PathIn(models.Checker), ExecutionOptions.Default);

        checker.Check([image, Uniform(448, 224, 255, 0, 0)]).ShouldBe([false, true]);
    }

    [Fact]
    public void Flag_keeps_the_image_and_records_the_verdict_in_the_png_parameters()
    {
        using var unchecked_ = StableDiffusionPipeline.Open(models.WithoutChecker);
        using var flagging = StableDiffusionPipeline.Open(models.FlagsEverything);

        var plain = unchecked_.Generate(Request(null), null, CancellationToken.None).Images;
        var flagged = flagging.Generate(Request(SafetyMode.Flag), null, CancellationToken.None).Images;

        plain.ShouldAllBe(i => i.Safety == null && i.Parameters.SafetyChecker == null);
        flagged.Select(i => i.Safety).ShouldAllBe(v => v == new SafetyVerdict(SafetyMode.Flag, true));
        flagged[0].Image.Pixels.ShouldBe(plain[0].Image.Pixels);
        var parameters = GenerationParameters.Parse(PngCodec.ReadTextChunks(flagged[1].ToPng())["parameters"]);
        parameters.SafetyChecker.ShouldBe("flagged");
    }

    [Fact]
    public void A_model_with_a_checker_flags_by_default_and_passes_what_it_does_not_flag()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.FlagsNothing);

        var images = pipeline.Generate(Request(null), null, CancellationToken.None).Images;

        pipeline.SafetyModeFor(Request(null)).ShouldBe(SafetyMode.Flag);
        images.ShouldAllBe(i => i.Safety == new SafetyVerdict(SafetyMode.Flag, false) && i.Parameters.SafetyChecker == "passed");
    }

    [Fact]
    public void Blur_replaces_a_flagged_image_by_its_obscuring_blur()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.FlagsEverything);

        var original = pipeline.Generate(Request(SafetyMode.Off), null, CancellationToken.None).Images[0];
        var blurred = pipeline.Generate(Request(SafetyMode.Blur), null, CancellationToken.None).Images[0];

        original.Safety.ShouldBeNull();
        blurred.Safety.ShouldBe(new SafetyVerdict(SafetyMode.Blur, true));
        blurred.Parameters.SafetyChecker.ShouldBe("blurred");
        blurred.Image.Pixels.SequenceEqual(ImageOps.ObscuringBlur(original.Image).Pixels).ShouldBeTrue();

        // The oracle's image is flat; on a detailed one the blur must wipe the detail out.
        var checker = Uniform(64, 64, 0, 0, 0);
        for (var i = 0; i < checker.Pixels.Length; i += 6)
        {
            checker.Pixels[i] = checker.Pixels[i + 1] = checker.Pixels[i + 2] = 255;
        }

        var smoothed = ImageOps.ObscuringBlur(checker);
        var interior = Enumerable.Range(16, 32).SelectMany(y => Enumerable.Range(16, 32).Select(x => (int)smoothed.Pixels[(y * 64 + x) * 3])).ToList();
        (interior.Max() - interior.Min()).ShouldBeLessThan(40, $"min {smoothed.Pixels.Min()} max {smoothed.Pixels.Max()}");
    }

    [Fact]
    public void Block_marks_a_flagged_image_blocked_and_keeps_none_of_its_pixels()
    {
        using var flagging = StableDiffusionPipeline.Open(models.FlagsEverything);
        using var passing = StableDiffusionPipeline.Open(models.FlagsNothing);

        var blocked = flagging.Generate(Request(SafetyMode.Block), null, CancellationToken.None).Images;
        var kept = passing.Generate(Request(SafetyMode.Block), null, CancellationToken.None).Images;

        blocked.ShouldAllBe(i => i.Safety!.Blocked && i.Image.Pixels.All(p => p == 0));
        kept.ShouldAllBe(i => !i.Safety!.Blocked && i.Parameters.SafetyChecker == "passed" && i.Image.Pixels.Any(p => p != 0));
    }

    [Fact]
    public void Asking_for_a_check_without_a_checker_is_refused()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.WithoutChecker);

        Should.Throw<ArgumentException>(() => pipeline.Generate(Request(SafetyMode.Block), null, CancellationToken.None))
            .Message.ShouldContain("safety_checker");
        pipeline.Generate(Request(SafetyMode.Off), null, CancellationToken.None).Images.Count.ShouldBe(2);
    }
}
