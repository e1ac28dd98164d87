using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Randomness;
using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Pipelines;

/// <summary>
/// The per-step work of a render: scale the input, the UNet's prediction for both guidance halves (one batched call,
/// or split calls and latent windows as the memory strategy says: <see cref="UnetRunner"/>), combine them,
/// draw step noise when the sampler needs it, advance the sampler, and re-impose the source outside an inpaint mask.
/// Every buffer is allocated in the constructor, so <see cref="RunStep"/> allocates nothing.
/// </summary>
internal sealed class DenoisingLoop : IDisposable
{
    private readonly IScheduler _scheduler;
    private readonly UnetRunner _unet;
    private readonly RunOptions _runOptions = new();
    private readonly TorchCpuGenerator[] _generators;
    private readonly float[] _latents;
    private readonly float[] _guided;
    private readonly float[] _stepNoise;
    private readonly float _guidanceScale;
    private readonly bool _useGuidance;
    private readonly int _imageLength;
    private readonly InpaintState? _inpaint;

    public DenoisingLoop(Unet unet, IScheduler scheduler, float[] latents, int latentHeight, int latentWidth,
        PromptConditioning conditioning, double guidanceScale, TorchCpuGenerator[] generators, InpaintState? inpaint,
        MemoryStrategy? memory = null)
    {
        _scheduler = scheduler;
        _latents = latents;
        _generators = generators;
        _guidanceScale = (float)guidanceScale;
        _useGuidance = guidanceScale > 1.0;
        _imageLength = latents.Length / generators.Length;
        _inpaint = inpaint;
        _guided = new float[latents.Length];
        _stepNoise = new float[latents.Length];
        var modelBatch = _useGuidance ? 2 * generators.Length : generators.Length;
        _unet = new UnetRunner(unet, memory ?? MemoryStrategy.Resident, modelBatch, latentHeight, latentWidth, conditioning);
    }

    public float[] Latents => _latents;

    /// <summary>Makes a UNet call that is running stop as soon as ONNX Runtime checks (between kernels).</summary>
    public void Terminate() => _runOptions.Terminate = true;

    public void RunStep(int step)
    {
        var input = _unet.Input.AsSpan();
        _scheduler.ScaleModelInput(_latents, input[.._latents.Length], step);
        if (_useGuidance)
        {
            // Row order matches diffusers: unconditional half first, then the conditional half.
            input[.._latents.Length].CopyTo(input[_latents.Length..]);
        }

        _unet.Run(_scheduler.Timesteps[step], _runOptions);

        ReadOnlySpan<float> prediction = _unet.Output;
        if (_useGuidance)
        {
            var unconditional = prediction[.._latents.Length];
            TensorPrimitives.Subtract(prediction[_latents.Length..], unconditional, _guided);
            TensorPrimitives.MultiplyAdd(_guided, _guidanceScale, unconditional, _guided);
            prediction = _guided;
        }

        if (_scheduler.NeedsNoise(step))
        {
            for (var i = 0; i < _generators.Length; i++)
            {
                _generators[i].FillNormal(_stepNoise.AsSpan(i * _imageLength, _imageLength));
            }
        }

        _scheduler.Step(prediction, step, _latents, _stepNoise);
        _inpaint?.KeepUnmasked(_scheduler, step + 1, _latents);
    }

    public void Dispose()
    {
        _unet.Dispose();
        _runOptions.Dispose();
    }
}

/// <summary>
/// Inpainting's per-step constraint: outside the mask the latent follows the source, noised to the level the sample
/// has just reached (the clean source after the last step), as the reference inpainting scripts do, so the repainted
/// region is denoised in context.
/// </summary>
internal sealed class InpaintState(float[] source, float[] noise, float[] mask)
{
    private readonly float[] _renoised = new float[source.Length];

    public void KeepUnmasked(IScheduler scheduler, int nextStep, Span<float> latents)
    {
        if (nextStep < scheduler.Timesteps.Count)
        {
            scheduler.AddNoise(source, noise, nextStep, _renoised);
        }
        else
        {
            source.CopyTo(_renoised, 0);
        }

        // latents = renoised + mask · (latents − renoised)
        TensorPrimitives.Subtract(latents, _renoised, latents);
        TensorPrimitives.MultiplyAdd(latents, mask, _renoised, latents);
    }
}
