using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Microsoft.ML.OnnxRuntime;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Randomness;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.Diffusion.Tokenizers;
using RenderFarm.ModelGenerator;

namespace RenderFarm.Benchmarks;

/// <summary>
/// One denoising step of the engine (input scaling, batched CFG UNet call through IOBinding, guidance, sampler step)
/// against a bare <see cref="InferenceSession.Run(RunOptions, IReadOnlyCollection{string}, IReadOnlyCollection{OrtValue}, IReadOnlyCollection{string}, IReadOnlyCollection{OrtValue})"/>
/// of the same UNet on the same inputs with preallocated outputs: the difference is the engine's overhead per step.
/// </summary>
public abstract class StepBenchmarkBase
{
    /// <summary>The model whose UNet both sides run.</summary>
    protected abstract string ModelDirectory();

    private const int Steps = 20;
    private StableDiffusionPipeline _pipeline = null!;
    private DenoisingLoop _loop = null!;
    private float[] _initialLatents = null!;
    private int _step;
    private RunOptions _runOptions = null!;
    private string[] _inputNames = null!;
    private OrtValue[] _inputs = null!;
    private string[] _outputNames = null!;
    private OrtValue[] _outputs = null!;

    [Params(512, 1024)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _pipeline = StableDiffusionPipeline.Open(ModelDirectory());
        var latent = Size / 8;
        var scheduler = SchedulerFactory.Create(SamplerNames.Euler, _pipeline.Model.Scheduler);
        scheduler.SetTimesteps(Steps);
        ClipTokenizer tokenizer = _pipeline.Tokenizer;
        var (hidden, width) = _pipeline.TextEncoder.Encode([tokenizer.Encode("").Ids, tokenizer.Encode("a lighthouse at dusk").Ids]);
        var generator = new TorchCpuGenerator(42);
        _initialLatents = new float[4 * latent * latent];
        generator.FillNormal(_initialLatents);
        _loop = new DenoisingLoop(_pipeline.Unet, scheduler, (float[])_initialLatents.Clone(), latent, latent, new PromptConditioning(hidden, width), 7.5, [generator], inpaint: null);

        // The bare baseline: the same session, inputs of the same shape and values, outputs preallocated.
        var sample = new float[2 * _initialLatents.Length];
        _initialLatents.CopyTo(sample, 0);
        _initialLatents.CopyTo(sample, _initialLatents.Length);
        _runOptions = new RunOptions();
        _inputNames = [Unet.Sample, Unet.Timestep, Unet.EncoderHiddenStates];
        _inputs =
        [
            OrtValue.CreateTensorValueFromMemory(sample, [2, 4, latent, latent]),
            OrtValue.CreateTensorValueFromMemory(new long[] { 500 }, [1]),
            OrtValue.CreateTensorValueFromMemory(hidden, [2, hidden.Length / 2 / width, width]),
        ];
        _outputNames = [Unet.OutSample];
        _outputs = [OrtValue.CreateTensorValueFromMemory(new float[sample.Length], [2, 4, latent, latent])];
    }

    [Benchmark(Baseline = true, Description = "bare InferenceSession.Run")]
    public void BareRun() => _pipeline.Unet.Component.Session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);

    [Benchmark(Description = "engine step")]
    public void EngineStep()
    {
        _loop.RunStep(_step);
        if (++_step == Steps)
        {
            // Start the schedule over so every measured step is a real one, not a step past the end.
            _step = 0;
            _initialLatents.CopyTo(_loop.Latents, 0);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _loop.Dispose();
        foreach (var value in _inputs.Concat(_outputs))
        {
            value.Dispose();
        }

        _runOptions.Dispose();
        _pipeline.Dispose();
    }
}

/// <summary>The tiny SD-architecture model: a step whose cost grows with resolution as real SD's does.</summary>
[MemoryDiagnoser]
[Config(typeof(SlowStepConfig))]
public class DenoisingStepBenchmarks : StepBenchmarkBase
{
    protected override string ModelDirectory() =>
        TestModels.EnsureTiny(Path.Combine(Path.GetTempPath(), "renderfarm-bench", "tiny-sd"));
}

/// <summary>
/// The same two methods on the oracle model, whose UNet costs almost nothing: what remains of an engine step is the
/// engine's own per-step work (input scaling, guidance, sampler, binding), measured to the microsecond where the
/// tiny model's seconds-long steps on a shared VM drown it in noise. Overhead = (engine − bare) here ÷ a tiny step.
/// </summary>
[MemoryDiagnoser]
public class StepOverheadBenchmarks : StepBenchmarkBase
{
    protected override string ModelDirectory() =>
        TestModels.EnsureOracle(Path.Combine(Path.GetTempPath(), "renderfarm-bench", "oracle"));
}

/// <summary>A 1024² step of the tiny model takes tens of seconds on two cores: one invocation per iteration, few iterations.</summary>
public sealed class SlowStepConfig : ManualConfig
{
    public SlowStepConfig() =>
        AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(5).WithInvocationCount(1).WithUnrollFactor(1));
}
