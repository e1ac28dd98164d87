using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.ModelGenerator;

namespace RenderFarm.Diffusion.Tests.Models;

/// <summary>The tiny SD 2.x-layout model, generated once, with a copy whose scheduler config says ε-prediction.</summary>
public sealed class TinySd2Models : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("renderfarm-tiny-sd2-").FullName;

    public TinySd2Models()
    {
        Sd2 = TestModels.EnsureTiny(Path.Combine(_root, "tiny-sd2"), new TinyModelOptions(Family: TinyFamily.StableDiffusion2));
        Epsilon = Path.Combine(_root, "tiny-sd2-epsilon");
        foreach (var file in Directory.EnumerateFiles(Sd2, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(Epsilon, Path.GetRelativePath(Sd2, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        var config = Path.Combine(Epsilon, "scheduler", "scheduler_config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"v_prediction\"", "\"epsilon\"", StringComparison.Ordinal));
    }

    public string Sd2 { get; }

    /// <summary>The same weights read as an ε-prediction model: what SD 2.x would render if the prediction type were ignored.</summary>
    public string Epsilon { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}

/// <summary>
/// SD 2.x end to end on the tiny model in its layout: the wider text encoder feeds the UNet's cross-attention, the
/// scheduler config's v-prediction is what the sampler uses, 768² is the default size, and a seed fixes the image.
/// </summary>
public sealed class TinySd2Tests(TinySd2Models models) : IClassFixture<TinySd2Models>
{
    [Fact]
    public void The_folder_reads_as_a_v_prediction_model_trained_at_768()
    {
        var folder = ModelFolder.Open(models.Sd2);

        folder.Scheduler.PredictionType.ShouldBe("v_prediction");
        folder.DefaultImageSide.ShouldBe(768);
        ModelFolder.Open(models.Epsilon).DefaultImageSide.ShouldBe(512);
    }

    [Theory]
    [InlineData(SamplerNames.Euler)]
    [InlineData(SamplerNames.Ddim)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    public void It_renders_deterministically_by_seed_and_its_v_prediction_is_what_the_sampler_uses(string sampler)
    {
        using var sd2 = StableDiffusionPipeline.Open(models.Sd2);
        using var epsilon = StableDiffusionPipeline.Open(models.Epsilon);

        var first = Render(sd2, sampler, seed: 11);
        var again = Render(sd2, sampler, seed: 11);
        var otherSeed = Render(sd2, sampler, seed: 12);
        var readAsEpsilon = Render(epsilon, sampler, seed: 11);

        again.Image.Pixels.ShouldBe(first.Image.Pixels);
        otherSeed.Image.Pixels.ShouldNotBe(first.Image.Pixels);
        // The same weights and noise read as ε-prediction end elsewhere: the sampler took the config's v-prediction.
        MeanAbsoluteDifference(readAsEpsilon.Image, first.Image).ShouldBeGreaterThan(2.0);
        var parameters = GenerationParameters.Parse(PngCodec.ReadTextChunks(first.ToPng())["parameters"]);
        (parameters.Model, parameters.Seed, parameters.Width, parameters.Height).ShouldBe(("tiny-sd2", 11UL, 64, 64));
    }

    private static GeneratedImage Render(StableDiffusionPipeline pipeline, string sampler, ulong seed) =>
        pipeline.Generate(new GenerationRequest
        {
            Images = [new ImageSpec("a lighthouse at dusk", "", seed)],
            Width = 64,
            Height = 64,
            Steps = 6,
            GuidanceScale = 7.5,
            Sampler = sampler,
        }, null, CancellationToken.None).Images[0];

    private static double MeanAbsoluteDifference(RgbImage a, RgbImage b)
    {
        var total = 0L;
        for (var i = 0; i < a.Pixels.Length; i++)
        {
            total += Math.Abs(a.Pixels[i] - b.Pixels[i]);
        }

        return (double)total / a.Pixels.Length;
    }
}
