using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Safety;
using RenderFarm.Diffusion.Tests.Safety;
using RenderFarm.Diffusion.Watermarking;

namespace RenderFarm.Diffusion.Tests.Watermarking;

/// <summary>The engine's one path for the watermark: after the safety checker, before PNG encoding.</summary>
public sealed class PipelineWatermarkTests(SafetyModels models) : IClassFixture<SafetyModels>
{
    private static GenerationRequest Request(byte[]? watermark, SafetyMode? safety = null, int size = 256) => new()
    {
        Images = GenerationRequest.Seeds("a lighthouse at dusk", "", 42, 2),
        Width = size,
        Height = size,
        Steps = 2,
        Safety = safety,
        Watermark = watermark,
    };

    [Fact]
    public void Every_image_is_marked_and_its_parameters_say_so()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.WithoutChecker);

        var images = pipeline.Generate(Request("StableDiffusionV1"u8.ToArray()), null, CancellationToken.None).Images;

        Assert.All(images, image =>
        {
            var png = image.ToPng();
            Assert.Equal("StableDiffusionV1", DwtDctWatermark.Decode(PngCodec.Decode(png))?.Text);
            Assert.Equal("dwtDct", GenerationParameters.Parse(PngCodec.ReadTextChunks(png)["parameters"]).Watermark);
        });
    }

    [Fact]
    public void Without_a_payload_nothing_is_marked()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.WithoutChecker);

        var images = pipeline.Generate(Request(null), null, CancellationToken.None).Images;

        Assert.All(images, image =>
        {
            Assert.Null(image.Parameters.Watermark);
            Assert.Null(DwtDctWatermark.Decode(image.Image));
        });
    }

    [Fact]
    public void A_blurred_image_is_marked_after_the_blur()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.FlagsEverything);

        var images = pipeline.Generate(Request("StableDiffusionV1"u8.ToArray(), SafetyMode.Blur), null, CancellationToken.None).Images;

        Assert.All(images, image =>
        {
            Assert.Equal("blurred", image.Parameters.SafetyChecker);
            Assert.Equal("StableDiffusionV1", DwtDctWatermark.Decode(image.Image)?.Text);
        });
    }

    [Fact]
    public void A_request_too_small_for_the_mark_is_refused_before_rendering()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.WithoutChecker);

        var error = Assert.Throws<ArgumentException>(() => pipeline.Generate(Request("StableDiffusionV1"u8.ToArray(), size: 128), null, CancellationToken.None));

        Assert.Contains("Watermark", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Data_that_is_not_an_image_is_a_format_error()
    {
        Assert.Throws<FormatException>(() => PngCodec.Decode("hello"u8));
    }
}
