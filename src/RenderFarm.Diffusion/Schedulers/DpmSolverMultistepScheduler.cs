namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// DPM-Solver++(2M) (Lu et al. 2022), following diffusers' <c>DPMSolverMultistepScheduler</c> with
/// <c>algorithm_type = "dpmsolver++"</c>, <c>solver_order = 2</c>, <c>solver_type = "midpoint"</c>,
/// <c>lower_order_final = true</c> and <c>final_sigmas_type = "zero"</c>; optionally with Karras sigmas.
/// </summary>
/// <remarks>
/// The sample is variance-preserving (x = α_t·x₀ + σ_t·ε, α_t = 1/√(σ² + 1), σ_t = σ·α_t, λ = log α_t − log σ_t).
/// With D₀ the current x₀ estimate, h = λ_next − λ_cur:
/// first order x ← (σ_next/σ_cur)·x − α_next(e^{−h} − 1)·D₀;
/// second order adds −½·α_next(e^{−h} − 1)·D₁ with D₁ = (D₀ − D₋₁)/r, r = (λ_cur − λ_prev)/h.
/// Step 0 (no history) and the last step (final σ = 0, which makes the update exactly D₀) are first order.
/// Leading spacing uses T div (n + 1) as the stride, as diffusers does for this scheduler.
/// With Karras sigmas diffusers rounds the <c>_sigma_to_t</c> timesteps to integers, and so do we: the UNet sees
/// integral timesteps while the solver uses the exact Karras σ.
/// </remarks>
public sealed class DpmSolverMultistepScheduler : SchedulerBase
{
    private readonly bool useKarrasSigmas;

    // Per-step float coefficients: α_t and σ_t of the current level for the x₀ estimate
    // (ε: (x − σ_t·m)/α_t; v: α_t·x − σ_t·m),
    // first-order update x ← ratio·x − phi·D0, and the second-order D1 weight 1/r.
    private float[] x0Sample = [];
    private float[] x0Output = [];
    private float[] ratio = [];
    private float[] phi = [];
    private float[] inverseR = [];
    private double[] sigmas = [];

    private float[] previousEstimate = [];
    private float[] currentEstimate = [];
    private bool hasPrevious;
    private int lastStepIndex = -1;

    public DpmSolverMultistepScheduler(SchedulerConfig config, bool useKarrasSigmas)
        : base(config)
    {
        this.useKarrasSigmas = useKarrasSigmas;
    }

    public override float InitNoiseSigma => 1f;

    protected override double[] BuildSchedule(int inferenceSteps)
    {
        double[] timesteps;
        sigmas = new double[inferenceSteps + 1];
        if (useKarrasSigmas)
        {
            var karras = KarrasSigmas(TrainSigmas[0], TrainSigmas[^1], inferenceSteps);
            timesteps = new double[inferenceSteps];
            for (var i = 0; i < inferenceSteps; i++)
            {
                sigmas[i] = karras[i];
                timesteps[i] = Math.Round(SigmaToTimestep(karras[i]));
            }
        }
        else
        {
            timesteps = DpmTimestepsDescending(inferenceSteps);
            for (var i = 0; i < inferenceSteps; i++)
            {
                sigmas[i] = TrainSigmas[(int)timesteps[i]];
            }
        }

        sigmas[inferenceSteps] = 0;

        x0Sample = new float[inferenceSteps];
        x0Output = new float[inferenceSteps];
        ratio = new float[inferenceSteps];
        phi = new float[inferenceSteps];
        inverseR = new float[inferenceSteps];
        for (var i = 0; i < inferenceSteps; i++)
        {
            var (alphaCur, sigmaCur) = AlphaSigma(sigmas[i]);
            var (alphaNext, sigmaNext) = AlphaSigma(sigmas[i + 1]);

            // For σ_next = 0, λ_next = +∞: e^{−h} = 0 and σ_next/σ_cur = 0, so the update is x ← D₀ exactly.
            var h = Lambda(alphaNext, sigmaNext) - Lambda(alphaCur, sigmaCur);
            x0Sample[i] = (float)alphaCur;
            x0Output[i] = (float)sigmaCur;
            ratio[i] = (float)(sigmaNext / sigmaCur);
            phi[i] = (float)(alphaNext * (Math.Exp(-h) - 1));
            if (i > 0)
            {
                var (alphaPrev, sigmaPrev) = AlphaSigma(sigmas[i - 1]);
                var h0 = Lambda(alphaCur, sigmaCur) - Lambda(alphaPrev, sigmaPrev);
                inverseR[i] = (float)(1 / (h0 / h));
            }
        }

        hasPrevious = false;
        lastStepIndex = -1;
        return timesteps;
    }

    protected override void StepCore(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise)
    {
        if (lastStepIndex >= 0 && stepIndex != lastStepIndex + 1)
        {
            throw new InvalidOperationException(
                $"DPM-Solver++ keeps history: expected step {lastStepIndex + 1}, got {stepIndex}. Call SetTimesteps to start a new run.");
        }

        EnsureBuffers(sample.Length);
        var secondOrder = hasPrevious && stepIndex < InferenceSteps - 1;
        var a = x0Sample[stepIndex];
        var b = x0Output[stepIndex];
        var r = ratio[stepIndex];
        var p = phi[stepIndex];
        var invR = inverseR[stepIndex];
        var vPrediction = Prediction == PredictionKind.VPrediction;
        for (var j = 0; j < sample.Length; j++)
        {
            var x = sample[j];
            var m = modelOutput[j];
            var d0 = vPrediction ? (a * x) - (b * m) : (x - (b * m)) / a;
            currentEstimate[j] = d0;
            var next = (r * x) - (p * d0);
            if (secondOrder)
            {
                var d1 = invR * (d0 - previousEstimate[j]);
                next -= 0.5f * p * d1;
            }

            sample[j] = next;
        }

        (previousEstimate, currentEstimate) = (currentEstimate, previousEstimate);
        hasPrevious = true;
        lastStepIndex = stepIndex;
    }

    protected override void AddNoiseCore(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var (alpha, sigma) = AlphaSigma(sigmas[stepIndex]);
        var signal = (float)alpha;
        var noiseScale = (float)sigma;
        for (var j = 0; j < original.Length; j++)
        {
            destination[j] = (signal * original[j]) + (noiseScale * noise[j]);
        }
    }

    private static (double Alpha, double Sigma) AlphaSigma(double sigma)
    {
        var alpha = 1 / Math.Sqrt((sigma * sigma) + 1);
        return (alpha, sigma * alpha);
    }

    private static double Lambda(double alpha, double sigma) => Math.Log(alpha) - Math.Log(sigma);

    /// <summary>
    /// diffusers' DPM-Solver timesteps (descending, n of them): linspace = round(linspace(0, T − 1, n + 1)) without its 0;
    /// leading = k·(T div (n + 1)) + steps_offset for k = n … 1; trailing = round(T − k·T/n) − 1.
    /// </summary>
    private double[] DpmTimestepsDescending(int inferenceSteps)
    {
        var trainSteps = Config.NumTrainTimesteps;
        var result = new double[inferenceSteps];
        switch (Spacing)
        {
            case TimestepSpacing.Leading:
                // At least 1: from 1000 steps on, T div (n + 1) is 0 and every timestep would collapse onto the offset.
                var stride = Math.Max(1, trainSteps / (inferenceSteps + 1));
                var offset = LeadingOffset(inferenceSteps * stride);
                for (var k = 0; k < inferenceSteps; k++)
                {
                    result[k] = ((inferenceSteps - k) * stride) + offset;
                }

                return result;
            case TimestepSpacing.Linspace:
                var points = Linspace(0, trainSteps - 1, inferenceSteps + 1);
                for (var k = 0; k < inferenceSteps; k++)
                {
                    result[k] = Math.Round(points[inferenceSteps - k]);
                }

                return result;
            default:
                return DiscreteTimestepsDescending(inferenceSteps);
        }
    }

    private void EnsureBuffers(int length)
    {
        if (currentEstimate.Length == length)
        {
            return;
        }

        if (hasPrevious)
        {
            throw new InvalidOperationException($"The sample length changed mid-run from {currentEstimate.Length} to {length}.");
        }

        currentEstimate = new float[length];
        previousEstimate = new float[length];
    }
}
