namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// Shared shape of diffusers' k-diffusion ports (<c>EulerDiscreteScheduler</c>, <c>EulerAncestralDiscreteScheduler</c>,
/// <c>LMSDiscreteScheduler</c>): the sample lives in σ-space x = x₀ + σ·ε, the UNet sees x/√(σ² + 1),
/// and the schedule is the training σ table interpolated at the chosen timesteps with a final σ = 0.
/// </summary>
public abstract class SigmaSchedulerBase : SchedulerBase
{
    private float initNoiseSigma;

    protected SigmaSchedulerBase(SchedulerConfig config)
        : base(config)
    {
    }

    /// <summary>σ for each step plus a trailing 0, so step i moves from Sigmas[i] to Sigmas[i + 1].</summary>
    protected double[] Sigmas { get; private set; } = [];

    /// <summary>
    /// σ_max for linspace/trailing, √(σ_max² + 1) for leading: diffusers' rule, which keeps leading-spaced runs
    /// (whose first σ sits below the table's top) at unit variance after <see cref="ScaleModelInput"/>.
    /// </summary>
    public override float InitNoiseSigma => initNoiseSigma;

    protected override double[] BuildSchedule(int inferenceSteps)
    {
        var timesteps = SigmaTimestepsDescending(inferenceSteps);
        Sigmas = new double[inferenceSteps + 1];
        var maxSigma = 0.0;
        for (var i = 0; i < inferenceSteps; i++)
        {
            Sigmas[i] = InterpolateTrainSigma(timesteps[i]);
            maxSigma = Math.Max(maxSigma, Sigmas[i]);
        }

        initNoiseSigma = (float)(Spacing == TimestepSpacing.Leading ? Math.Sqrt((maxSigma * maxSigma) + 1) : maxSigma);
        OnSigmasBuilt(inferenceSteps);
        return timesteps;
    }

    /// <summary>Per-run tables and history reset for the concrete sampler, after <see cref="Sigmas"/> is set.</summary>
    protected virtual void OnSigmasBuilt(int inferenceSteps)
    {
    }

    public override void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex)
    {
        base.ScaleModelInput(sample, destination, stepIndex);
        var sigma = Sigmas[stepIndex];
        var scale = (float)(1 / Math.Sqrt((sigma * sigma) + 1));
        for (var j = 0; j < destination.Length; j++)
        {
            destination[j] *= scale;
        }
    }

    protected override void AddNoiseCore(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var sigma = (float)Sigmas[stepIndex];
        for (var j = 0; j < original.Length; j++)
        {
            destination[j] = original[j] + (noise[j] * sigma);
        }
    }

    /// <summary>
    /// The x₀ estimate from the model output at noise level σ (both prediction types), written as diffusers does.
    /// For v-prediction the model saw x/√(σ² + 1), hence x₀ = −σ/√(σ² + 1)·v + x/(σ² + 1).
    /// </summary>
    protected readonly struct OriginalSampleEstimator
    {
        private readonly bool vPrediction;
        private readonly float sigma;
        private readonly float vOutputScale;
        private readonly float vSampleScale;

        public OriginalSampleEstimator(double sigma, bool vPrediction)
        {
            this.vPrediction = vPrediction;
            this.sigma = (float)sigma;
            vOutputScale = (float)(-sigma / Math.Sqrt((sigma * sigma) + 1));
            vSampleScale = (float)(1 / ((sigma * sigma) + 1));
        }

        public float Estimate(float sample, float modelOutput) =>
            vPrediction ? (modelOutput * vOutputScale) + (sample * vSampleScale) : sample - (sigma * modelOutput);
    }

    protected OriginalSampleEstimator EstimatorAt(int stepIndex) =>
        new(Sigmas[stepIndex], Prediction == PredictionKind.VPrediction);

    /// <summary>
    /// Timesteps as the Euler/LMS family in diffusers chooses them: linspace is not rounded (fractional t, σ
    /// interpolated linearly), leading is k·(T div n) + steps_offset, trailing is round(T − k·T/n) − 1.
    /// </summary>
    private double[] SigmaTimestepsDescending(int inferenceSteps)
    {
        if (Spacing != TimestepSpacing.Linspace)
        {
            return DiscreteTimestepsDescending(inferenceSteps);
        }

        var points = Linspace(0, Config.NumTrainTimesteps - 1, inferenceSteps);
        Array.Reverse(points);
        return points;
    }
}
