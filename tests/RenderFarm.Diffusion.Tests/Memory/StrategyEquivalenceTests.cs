using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.Diffusion.Tests.Pipelines;

namespace RenderFarm.Diffusion.Tests.Memory;

/// <summary>
/// Every memory strategy renders the resident image on the oracle model, whose UNet prediction and VAE are
/// per-pixel functions: tiling and splitting must change nothing but float rounding in the blends.
/// </summary>
[Collection(OracleCollection.Name)]
public sealed class StrategyEquivalenceTests(OracleModels models)
{
    // 128×96 pixels = 16×12 latent: several 8-wide windows and tiles on both axes, the last ones flush with the edge.
    private static readonly TileSize Small = new(8, 2);

    public static TheoryData<string> Strategies => new()
    {
        "batch-split",
        "sequential",
        "vae-cpu",
        "tiled-vae",
        "latent-tiling",
        "sequential,batch-split,tiled-vae,latent-tiling",
    };

    [Theory]
    [MemberData(nameof(Strategies))]
    public void Each_strategy_renders_the_resident_image(string names)
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var request = Request();

        var resident = pipeline.Generate(request, null, CancellationToken.None);
        var strategy = Strategy(names);
        var other = pipeline.Generate(request with { Memory = strategy }, null, CancellationToken.None);

        other.Memory.ShouldBe(strategy);
        if (strategy.Has(MemoryStrategies.TiledVae))
        {
            // The oracle's per-pixel VAE has no GroupNorm: its tiles run the exported graph, each on its own.
            pipeline.VaeDecoder.SharedStatisticsUnavailable.ShouldNotBeNull().ShouldContain("no InstanceNormalization");
        }

        for (var i = 0; i < resident.Images.Count; i++)
        {
            MaxDifference(other.Images[i].Image, resident.Images[i].Image).ShouldBeLessThanOrEqualTo(1, $"image {i} under {names}");
        }
    }

    [Fact]
    public void Tiled_img2img_encodes_and_decodes_like_the_whole_image()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var source = Gradient(128, 96);
        var request = Request() with { Mode = GenerationMode.ImageToImage, InitImage = source, Strength = 0.5, Sampler = SamplerNames.Ddim };

        var resident = pipeline.Generate(request, null, CancellationToken.None);
        var tiled = pipeline.Generate(request with { Memory = Strategy("sequential,tiled-vae") }, null, CancellationToken.None);

        MaxDifference(tiled.Images[0].Image, resident.Images[0].Image).ShouldBeLessThanOrEqualTo(1);
    }

    [Fact]
    public void Latent_windows_blend_to_the_untiled_noise_prediction_within_float_rounding()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        const int rows = 4, h = 12, w = 16;
        var width = (int)pipeline.Unet.Component.Input(Unet.EncoderHiddenStates).Dimensions[2];
        var hidden = new float[rows * 77 * width];
        for (var i = 0; i < hidden.Length; i++)
        {
            hidden[i] = MathF.Sin(i * 0.001f);
        }

        using var whole = new UnetRunner(pipeline.Unet, MemoryStrategy.Resident, rows, h, w, new PromptConditioning(hidden, width));
        using var tiled = new UnetRunner(pipeline.Unet, Strategy("batch-split,latent-tiling"), rows, h, w, new PromptConditioning(hidden, width));
        for (var i = 0; i < whole.Input.Length; i++)
        {
            whole.Input[i] = tiled.Input[i] = MathF.Cos(i * 0.37f);
        }

        using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
        whole.Run(500, runOptions);
        tiled.Run(500, runOptions);

        tiled.CallsPerStep.ShouldBe(rows * 2 * 3);
        var maxError = whole.Output.Zip(tiled.Output, (a, b) => Math.Abs(a - b) / Math.Max(1, Math.Abs(a))).Max();
        maxError.ShouldBeLessThan(1e-5f);
    }

    [Fact]
    public void Tiled_vae_decode_matches_the_whole_decode_within_float_rounding()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        const int h = 12, w = 16;
        var latent = Enumerable.Range(0, 4 * h * w).Select(i => MathF.Sin(i * 0.21f) * 2).ToArray();

        var whole = pipeline.VaeDecoder.Decode(latent, h, w);
        var tiled = TiledRunner.Run(latent, 4, 1, 3, 8, h, w, Small, (t, th, tw) => pipeline.VaeDecoder.Decode(t, th, tw), CancellationToken.None);

        whole.Zip(tiled, (a, b) => Math.Abs(a - b)).Max().ShouldBeLessThan(1e-5f);
    }

    [Fact]
    public void Sequential_offload_loads_each_component_only_while_it_runs()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var loadedDuringSteps = new List<(bool Text, bool Unet, bool Vae)>();
        var progress = new Inline(_ => loadedDuringSteps.Add(
            (pipeline.TextEncoder.Component.IsLoaded, pipeline.Unet.Component.IsLoaded, pipeline.VaeDecoder.Component.IsLoaded)));

        // A resident render first, so sequential has to release what is already loaded.
        pipeline.Generate(Request(), null, CancellationToken.None);
        pipeline.Unet.Component.IsLoaded.ShouldBeTrue();
        pipeline.Generate(Request() with { Memory = Strategy("sequential") }, progress, CancellationToken.None);

        loadedDuringSteps.ShouldNotBeEmpty();
        loadedDuringSteps.ShouldAllBe(s => !s.Text && s.Unet && !s.Vae);
        pipeline.TextEncoder.Component.IsLoaded.ShouldBeFalse();
        pipeline.Unet.Component.IsLoaded.ShouldBeFalse();
        pipeline.VaeDecoder.Component.IsLoaded.ShouldBeFalse();
        pipeline.VaeEncoder.Component.IsLoaded.ShouldBeFalse();
    }

    [Fact]
    public void Vae_on_the_cpu_gets_cpu_session_options_even_when_the_unet_asks_for_cuda()
    {
        var cuda = new ExecutionOptions { Provider = ExecutionProviderPreference.Cuda, ArenaLimitBytes = 1L << 30 };
        var vaeCpu = Strategy("vae-cpu");

        MemoryPlacement.ForVae(cuda, vaeCpu).Provider.ShouldBe(ExecutionProviderPreference.Cpu);
        MemoryPlacement.ForVae(cuda, MemoryStrategy.Resident).ShouldBe(cuda);

        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        pipeline.Generate(Request() with { Memory = vaeCpu }, null, CancellationToken.None);
        pipeline.VaeDecoder.Component.Options.Provider.ShouldBe(ExecutionProviderPreference.Cpu);
        pipeline.VaeDecoder.Component.Provider.ShouldBe(ExecutionProviders.Cpu);
        pipeline.Unet.Component.Options.Provider.ShouldBe(ExecutionProviderPreference.Auto);
    }

    internal static MemoryStrategy Strategy(string names) => new()
    {
        Strategies = MemoryStrategyNames.Parse(names.Split(',')),
        UnetRowsPerCall = 1,
        VaeTile = Small,
        LatentWindow = Small,
    };

    internal static GenerationRequest Request() => new()
    {
        Images = [new ImageSpec("a lighthouse at dusk", "blurry", 1234), new ImageSpec("a red fox", "", 99)],
        Width = 128,
        Height = 96,
        Steps = 6,
        Sampler = SamplerNames.Ddim,
        GuidanceScale = 7.5,
    };

    private static int MaxDifference(RgbImage a, RgbImage b) => a.Pixels.Zip(b.Pixels, (x, y) => Math.Abs(x - y)).Max();

    private static RgbImage Gradient(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var i = (y * width + x) * 3;
                pixels[i] = (byte)(x * 2);
                pixels[i + 1] = (byte)(y * 2);
                pixels[i + 2] = (byte)((x + y) % 256);
            }
        }

        return new RgbImage(width, height, pixels);
    }

    private sealed class Inline(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
