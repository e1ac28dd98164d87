namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// Latent Consistency Model sampling (Luo et al. 2023), following diffusers' <c>LCMScheduler</c>:
/// at each step the consistency function f(x, t) = c_skip(t)·x + c_out(t)·x̂₀ with
/// c_skip = σ_d²/((10t)² + σ_d²), c_out = 10t/√((10t)² + σ_d²), σ_d = 0.5 (10 = <c>timestep_scaling</c>),
/// then re-noising to the next timestep with fresh noise: x ← √ᾱ_next·f + √(1 − ᾱ_next)·z, except after the last step,
/// which returns f itself.
/// </summary>
/// <remarks>
/// Timesteps come from the distillation schedule, not from <c>timestep_spacing</c> (diffusers ignores it here too):
/// the original schedule is k·(T div N) − 1 for k = 1 … N (N = <c>original_inference_steps</c>, 50 for SD), reversed,
/// and n of its entries are taken at floor(linspace(0, N, n, endpoint = false)). For 4 steps: 999, 759, 499, 259.
/// </remarks>
public sealed class LcmScheduler : SchedulerBase
{
    private const double SigmaData = 0.5;

    private float[] sqrtAlpha = [];
    private float[] sqrtOneMinusAlpha = [];
    private float[] sqrtAlphaNext = [];
    private float[] sqrtOneMinusAlphaNext = [];
    private float[] skipScale = [];
    private float[] outScale = [];

    public LcmScheduler(SchedulerConfig config)
        : base(config)
    {
        if (config.OriginalInferenceSteps < 1 || config.OriginalInferenceSteps > config.NumTrainTimesteps)
        {
            throw new ArgumentException(
                $"original_inference_steps must be between 1 and num_train_timesteps, got {config.OriginalInferenceSteps}.", nameof(config));
        }
    }

    public override float InitNoiseSigma => 1f;

    protected override double[] BuildSchedule(int inferenceSteps)
    {
        var originalSteps = Config.OriginalInferenceSteps;
        if (inferenceSteps > originalSteps)
        {
            throw new ArgumentOutOfRangeException(
                nameof(inferenceSteps), inferenceSteps, $"LCM takes at most original_inference_steps ({originalSteps}) steps.");
        }

        var stride = Config.NumTrainTimesteps / originalSteps;
        var timesteps = new double[inferenceSteps];
        for (var i = 0; i < inferenceSteps; i++)
        {
            // floor(i·N/n) computed in integers: the same value as numpy's floor of linspace(0, N, n, endpoint=False).
            var index = (int)((long)i * originalSteps / inferenceSteps);
            timesteps[i] = ((originalSteps - index) * stride) - 1;
        }

        sqrtAlpha = new float[inferenceSteps];
        sqrtOneMinusAlpha = new float[inferenceSteps];
        sqrtAlphaNext = new float[inferenceSteps];
        sqrtOneMinusAlphaNext = new float[inferenceSteps];
        skipScale = new float[inferenceSteps];
        outScale = new float[inferenceSteps];
        for (var i = 0; i < inferenceSteps; i++)
        {
            var alpha = AlphasCumprod[(int)timesteps[i]];
            var alphaNext = i + 1 < inferenceSteps ? AlphasCumprod[(int)timesteps[i + 1]] : alpha;
            var scaled = timesteps[i] * Config.TimestepScaling;
            sqrtAlpha[i] = (float)Math.Sqrt(alpha);
            sqrtOneMinusAlpha[i] = (float)Math.Sqrt(1 - alpha);
            sqrtAlphaNext[i] = (float)Math.Sqrt(alphaNext);
            sqrtOneMinusAlphaNext[i] = (float)Math.Sqrt(1 - alphaNext);
            skipScale[i] = (float)(SigmaData * SigmaData / ((scaled * scaled) + (SigmaData * SigmaData)));
            outScale[i] = (float)(scaled / Math.Sqrt((scaled * scaled) + (SigmaData * SigmaData)));
        }

        return timesteps;
    }

    protected override bool NeedsNoiseCore(int stepIndex) => stepIndex < InferenceSteps - 1;

    protected override void StepCore(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var a = sqrtAlpha[stepIndex];
        var b = sqrtOneMinusAlpha[stepIndex];
        var cSkip = skipScale[stepIndex];
        var cOut = outScale[stepIndex];
        var renoise = stepIndex < InferenceSteps - 1;
        var aNext = sqrtAlphaNext[stepIndex];
        var bNext = sqrtOneMinusAlphaNext[stepIndex];
        var vPrediction = Prediction == PredictionKind.VPrediction;
        var clip = Config.ClipSample;
        for (var j = 0; j < sample.Length; j++)
        {
            var x = sample[j];
            var m = modelOutput[j];
            var x0 = vPrediction ? (a * x) - (b * m) : (x - (b * m)) / a;
            if (clip)
            {
                x0 = Math.Clamp(x0, -1f, 1f);
            }

            var denoised = (cOut * x0) + (cSkip * x);
            sample[j] = renoise ? (aNext * denoised) + (bNext * noise[j]) : denoised;
        }
    }

    protected override void AddNoiseCore(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination) =>
        AddNoiseVariancePreserving(original, noise, AlphaCumprodAt(Timesteps[stepIndex]), destination);
}
