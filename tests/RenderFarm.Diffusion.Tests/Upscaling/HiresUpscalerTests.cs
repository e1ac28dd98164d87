using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.Diffusion.Tests.Hires;
using RenderFarm.Diffusion.Upscaling;
using static RenderFarm.Diffusion.Tests.Hires.HiresTestKit;

namespace RenderFarm.Diffusion.Tests.Upscaling;

/// <summary>Hires on the tiny model with the tiny upscaler for the base-to-target upscale.</summary>
public sealed class HiresUpscalerTests(TinyModel model, TinyUpscalerFixture upscalers) : IClassFixture<TinyModel>, IClassFixture<TinyUpscalerFixture>
{
    [Fact]
    public async Task Hires_with_an_upscaler_refines_tiles_of_the_upscalers_output()
    {
        using var pipeline = StableDiffusionPipeline.Open(model.Path);
        using var upscaler = new Upscaler(UpscalerFolder.Open(upscalers.X2));
        var settings = new RefineSettings { Steps = 4, Sampler = SamplerNames.Euler, Strength = 0.5 };
        var request = new HiresRequest
        {
            Layout = Layout(128, 128, 64, 16, jobSeed: 5),
            Prompt = "a lighthouse at dusk",
            Seed = 5,
            BaseWidth = 64,
            BaseHeight = 64,
            Settings = settings,
            Upscaler = upscaler.Name,
        };

        using var withModel = new MemoryStream();
        var result = await new HiresPipeline(pipeline, new ModelBaseUpscaler(upscaler)).RenderAsync(request, withModel, null, CancellationToken.None);
        using var withClosedForm = new MemoryStream();
        await new HiresPipeline(pipeline, new ClosedFormUpscaler(upscaler.Name)).RenderAsync(request, withClosedForm, null, CancellationToken.None);
        using var resampled = new MemoryStream();
        await new HiresPipeline(pipeline).RenderAsync(request with { Upscaler = null }, resampled, null, CancellationToken.None);

        PngCodec.Decode(withModel.ToArray()).Pixels.ShouldBe(PngCodec.Decode(withClosedForm.ToArray()).Pixels);
        PngCodec.Decode(withModel.ToArray()).Pixels.ShouldNotBe(PngCodec.Decode(resampled.ToArray()).Pixels);
        result.Parameters.ShouldContain($"Hires upscaler: {upscaler.Name}");
    }

    [Fact]
    public async Task A_request_naming_another_upscaler_than_the_pipeline_has_is_refused()
    {
        using var pipeline = StableDiffusionPipeline.Open(model.Path);
        var request = new HiresRequest { Layout = Layout(128, 128, 64, 16), Prompt = "x", Seed = 1, BaseWidth = 64, BaseHeight = 64, Upscaler = "other" };
        await Should.ThrowAsync<ArgumentException>(() => new HiresPipeline(pipeline).RenderAsync(request, Stream.Null, null, CancellationToken.None));
    }

    /// <summary>The tiny upscaler's closed form on the whole base, cropped: what the model-backed upscaler must equal.</summary>
    private sealed class ClosedFormUpscaler(string name) : IBaseUpscaler
    {
        public string? Name => name;

        public RgbImage UpscaleRegion(RgbImage baseImage, int targetWidth, int targetHeight, PixelRect region, CancellationToken cancellationToken) =>
            Crop(TinyUpscalerReference.Upscale(baseImage, targetWidth / baseImage.Width), region);
    }
}
