using System.Numerics.Tensors;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Randomness;
using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.StepSyncBench;

/// <summary>
/// What every configuration renders: the tiny model's UNet, one prompt with classifier-free guidance, the same
/// initial noise, Euler (deterministic, so runs can be compared value for value), and one window layout.
/// </summary>
internal sealed class Scene
{
    public const float GuidanceScale = 7.5f;
    private readonly SchedulerConfig _schedulerConfig;

    public Scene(string modelDirectory, BenchOptions options)
    {
        var model = ModelFolder.Open(modelDirectory);
        UnetPath = model.UnetPath;
        _schedulerConfig = model.Scheduler;
        Steps = options.Steps;
        Window = new TileSize(options.Window, options.Overlap);
        LatentSize = options.Size / 8;
        Plan = new WindowPlan(LatentSize, LatentSize, Window);

        using (var pipeline = StableDiffusionPipeline.Open(modelDirectory))
        {
            var tokenizer = pipeline.Tokenizer;
            (Hidden, HiddenWidth) = pipeline.TextEncoder.Encode([tokenizer.Encode("").Ids, tokenizer.Encode("a lighthouse at dusk").Ids]);
        }

        InitialLatents = new float[WindowPlan.Channels * LatentSize * LatentSize];
        new TorchCpuGenerator(42).FillNormal(InitialLatents);
        TensorPrimitives.Multiply(InitialLatents, NewScheduler().InitNoiseSigma, InitialLatents);
    }

    public string UnetPath { get; }
    public int Steps { get; }
    public TileSize Window { get; }
    public int LatentSize { get; }
    public WindowPlan Plan { get; }
    public float[] Hidden { get; }
    public int HiddenWidth { get; }
    public float[] InitialLatents { get; }

    public IScheduler NewScheduler()
    {
        var scheduler = SchedulerFactory.Create(SamplerNames.Euler, _schedulerConfig);
        scheduler.SetTimesteps(Steps);
        return scheduler;
    }
}
