namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// DDIM (Song et al. 2020), following diffusers' <c>DDIMScheduler</c>: x₀ prediction, then
/// x_prev = √ᾱ_prev·x₀ + √(1 − ᾱ_prev − σ²)·ε + σ·z with σ = η·√((1 − ᾱ_prev)/(1 − ᾱ_t)·(1 − ᾱ_t/ᾱ_prev)).
/// </summary>
/// <remarks>
/// As in diffusers the previous timestep is t − T div n, not the next entry of <see cref="SchedulerBase.Timesteps"/>;
/// the two agree for leading spacing (SD's), and below zero ᾱ_prev is the final alpha (1, or ᾱ₀ when
/// <c>set_alpha_to_one</c> is false as in SD). Stateless between steps, so any start index works for img2img.
/// </remarks>
public sealed class DdimScheduler : SchedulerBase
{
    private readonly double eta;

    // Per-step float coefficients, indexed by step: √ᾱ_t, √(1 − ᾱ_t), √ᾱ_prev, the ε direction and the noise scale σ.
    private float[] sqrtAlpha = [];
    private float[] sqrtOneMinusAlpha = [];
    private float[] sqrtAlphaPrev = [];
    private float[] direction = [];
    private float[] noiseScale = [];

    public DdimScheduler(SchedulerConfig config, double eta = 0)
        : base(config)
    {
        if (!double.IsFinite(eta) || eta < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(eta), eta, "η must be finite and non-negative.");
        }

        this.eta = eta;
    }

    public override float InitNoiseSigma => 1f;

    protected override double[] BuildSchedule(int inferenceSteps)
    {
        var timesteps = DiscreteTimestepsDescending(inferenceSteps);
        var finalAlpha = Config.SetAlphaToOne ? 1.0 : AlphasCumprod[0];
        var stride = Config.NumTrainTimesteps / inferenceSteps;

        sqrtAlpha = new float[inferenceSteps];
        sqrtOneMinusAlpha = new float[inferenceSteps];
        sqrtAlphaPrev = new float[inferenceSteps];
        direction = new float[inferenceSteps];
        noiseScale = new float[inferenceSteps];
        for (var i = 0; i < inferenceSteps; i++)
        {
            var t = (int)timesteps[i];
            var prev = t - stride;
            var alpha = AlphasCumprod[t];
            var alphaPrev = prev >= 0 ? AlphasCumprod[prev] : finalAlpha;
            var variance = (1 - alphaPrev) / (1 - alpha) * (1 - (alpha / alphaPrev));
            var std = eta * Math.Sqrt(variance);

            sqrtAlpha[i] = (float)Math.Sqrt(alpha);
            sqrtOneMinusAlpha[i] = (float)Math.Sqrt(1 - alpha);
            sqrtAlphaPrev[i] = (float)Math.Sqrt(alphaPrev);
            // Clamped at 0: with η > 1 the formula can go negative, where diffusers would produce NaN.
            direction[i] = (float)Math.Sqrt(Math.Max(0, 1 - alphaPrev - (std * std)));
            noiseScale[i] = (float)std;
        }

        return timesteps;
    }

    protected override bool NeedsNoiseCore(int stepIndex) => noiseScale[stepIndex] > 0;

    protected override void StepCore(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var a = sqrtAlpha[stepIndex];
        var b = sqrtOneMinusAlpha[stepIndex];
        var aPrev = sqrtAlphaPrev[stepIndex];
        var dir = direction[stepIndex];
        var std = noiseScale[stepIndex];
        var vPrediction = Prediction == PredictionKind.VPrediction;
        var clip = Config.ClipSample;

        for (var j = 0; j < sample.Length; j++)
        {
            var x = sample[j];
            var m = modelOutput[j];
            float x0, eps;
            if (vPrediction)
            {
                x0 = (a * x) - (b * m);
                eps = (a * m) + (b * x);
            }
            else
            {
                x0 = (x - (b * m)) / a;
                eps = m;
            }

            if (clip)
            {
                x0 = Math.Clamp(x0, -1f, 1f);
            }

            var next = (aPrev * x0) + (dir * eps);
            if (std > 0)
            {
                next += std * noise[j];
            }

            sample[j] = next;
        }
    }

    protected override void AddNoiseCore(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination) =>
        AddNoiseVariancePreserving(original, noise, AlphaCumprodAt(Timesteps[stepIndex]), destination);
}
