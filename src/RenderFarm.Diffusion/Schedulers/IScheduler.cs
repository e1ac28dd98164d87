namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// A diffusion sampler over a flat latent buffer (all images of a batch, NCHW, contiguous).
/// One instance serves one denoising run: multistep schedulers keep history between <see cref="Step"/> calls.
/// Steps are addressed by index into <see cref="Timesteps"/>, so callers never compare floating-point timesteps.
/// </summary>
public interface IScheduler
{
    /// <summary>Model-facing timesteps in the order the loop visits them (fractional for Karras-sigma samplers).</summary>
    IReadOnlyList<double> Timesteps { get; }

    /// <summary>Standard deviation of the initial noise: the pipeline multiplies unit-normal noise by this.</summary>
    float InitNoiseSigma { get; }

    /// <summary>Chooses <paramref name="inferenceSteps"/> timesteps and resets all per-run state.</summary>
    void SetTimesteps(int inferenceSteps);

    /// <summary>Writes the UNet input for step <paramref name="stepIndex"/> (k-diffusion samplers divide by √(σ²+1); others copy).</summary>
    void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex);

    /// <summary>True when <see cref="Step"/> at this index consumes fresh unit-normal noise (ancestral, DDIM with η &gt; 0, LCM).</summary>
    bool NeedsNoise(int stepIndex);

    /// <summary>
    /// Advances <paramref name="sample"/> in place from the timestep at <paramref name="stepIndex"/> to the next one,
    /// given the (guided) model output. <paramref name="noise"/> is read only when <see cref="NeedsNoise"/> is true
    /// and then holds unit-normal values of the sample's length.
    /// </summary>
    void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise);

    /// <summary>Noises a clean latent to the level of the timestep at <paramref name="stepIndex"/> (img2img start, inpaint re-noise).</summary>
    void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination);
}
