using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Randomness;
using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Tests.Pipelines;

/// <summary>The loop's buffers are bound once: a step must not allocate on the managed heap (the GC would stall a render).</summary>
[Collection(OracleCollection.Name)]
public sealed class DenoisingLoopAllocationTests(OracleModels models)
{
    [Theory]
    [InlineData(SamplerNames.Euler, 7.5)]
    [InlineData(SamplerNames.EulerAncestral, 7.5)]
    [InlineData(SamplerNames.DpmPlusPlus2M, 7.5)]
    [InlineData(SamplerNames.Ddim, 1.0)]
    public void A_denoising_step_allocates_nothing(string sampler, double guidance)
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        var tokenizer = pipeline.Tokenizer;
        var (hidden, width) = pipeline.TextEncoder.Encode(guidance > 1
            ? [tokenizer.Encode("").Ids, tokenizer.Encode("a lighthouse").Ids]
            : [tokenizer.Encode("a lighthouse").Ids]);
        var scheduler = SchedulerFactory.Create(sampler, pipeline.Model.Scheduler);

        // As in the scheduler test: the runtime may charge a one-off few hundred bytes to this thread (tiering),
        // while an allocation in the loop recurs on every run, so the cleanest of several runs must be zero.
        var perRun = new long[3];
        for (var run = 0; run < perRun.Length; run++)
        {
            scheduler.SetTimesteps(12);
            var generator = new TorchCpuGenerator(1);
            var latents = new float[4 * 8 * 8];
            generator.FillNormal(latents);
            using var loop = new DenoisingLoop(pipeline.Unet, scheduler, latents, 8, 8, new PromptConditioning(hidden, width), guidance, [generator], inpaint: null);

            // The first steps may allocate once (ORT's first run, the sampler's history buffers).
            loop.RunStep(0);
            loop.RunStep(1);
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var step = 2; step < 12; step++)
            {
                loop.RunStep(step);
            }

            perRun[run] = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        perRun.Min().ShouldBe(0, $"bytes allocated per run: {string.Join(", ", perRun)}");
    }
}
