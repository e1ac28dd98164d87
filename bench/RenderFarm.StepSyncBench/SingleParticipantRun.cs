using System.Diagnostics;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Randomness;

namespace RenderFarm.StepSyncBench;

/// <summary>
/// Configuration (a): one worker with one core runs every window of every step through the engine's own
/// <see cref="DenoisingLoop"/> under the latent-tiling strategy (fp32, nothing serialised): today's single-machine
/// MultiDiffusion, the baseline the distributed mode has to beat.
/// </summary>
internal sealed class SingleParticipantRun(Scene scene) : IDisposable
{
    private readonly Unet _unet = new(scene.UnetPath, new ExecutionOptions { Provider = ExecutionProviderPreference.Cpu, IntraOpThreads = 1 });

    public RunMeasurement Run(int? stepLimit = null)
    {
        var latents = (float[])scene.InitialLatents.Clone();
        var memory = new MemoryStrategy { Strategies = MemoryStrategies.LatentTiling, LatentWindow = scene.Window };
        using var loop = new DenoisingLoop(_unet, scene.NewScheduler(), latents, scene.LatentSize, scene.LatentSize,
            new PromptConditioning(scene.Hidden, scene.HiddenWidth), Scene.GuidanceScale, [new TorchCpuGenerator(42)], inpaint: null, memory);
        var steps = new List<StepMeasurement>();
        var windows = scene.Plan.Windows.Count;
        for (var step = 0; step < (stepLimit ?? scene.Steps); step++)
        {
            var start = Stopwatch.GetTimestamp();
            loop.RunStep(step);
            var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            steps.Add(new StepMeasurement(ms, 0, 0, 0, 0, [new ParticipantStep(windows, ms, 0, 0, 0)]));
        }

        return new RunMeasurement(steps, latents);
    }

    public void Dispose() => _unet.Component.Dispose();
}
