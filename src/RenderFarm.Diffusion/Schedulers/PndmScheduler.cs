namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// PLMS: diffusers' <c>PNDMScheduler</c> with <c>skip_prk_steps = true</c> (Stable Diffusion's configuration).
/// Each step is the DDIM-equivalent transfer φ(x, ε', t → t − T div n) of Liu et al. (2022), eq. 11, applied to a
/// linear-multistep (Adams–Bashforth) combination ε' of the noise predictions seen so far.
/// </summary>
/// <remarks>
/// The schedule has n + 1 entries: diffusers repeats the second timestep, e.g. 981, 961, 961, 941, … for 50 steps.
/// Step 0 moves t₀ → t₁ with ε₀ and remembers x_{t₀}; step 1 (the repeat) redoes t₀ → t₁ from the remembered sample
/// with (ε₀ + ε₁)/2, a second-order (Heun-like) warm-up; from step 2 on the stored ε history feeds
/// AB2 (3, −1)/2, AB3 (23, −16, 5)/12 and AB4 (55, −59, 37, −9)/24. The repeat's ε₁ is not kept in the history,
/// as in diffusers. A run started later (img2img) warms up with first-order steps instead; a run started exactly at
/// the repeat has nothing to redo, so that step leaves the sample where it is (its level is the repeated timestep,
/// which the next step then consumes) and its model output is ignored.
/// </remarks>
public sealed class PndmScheduler : SchedulerBase
{
    private const int MaxHistory = 4;

    // Per-step DDIM transfer from timestep "from" to "to": x_to = sampleCoeff·x − outputCoeff·ε, plus √ᾱ/√(1 − ᾱ) at
    // "from" to turn a v prediction into ε. All float for the per-element loop; computed in double.
    private float[] sampleCoeff = [];
    private float[] outputCoeff = [];
    private float[] sqrtAlpha = [];
    private float[] sqrtOneMinusAlpha = [];

    private readonly float[][] history = new float[MaxHistory][];
    private float[] warmupSample = [];
    private int historyCount;
    private int lastStepIndex = -1;
    private bool hasWarmupSample;

    public PndmScheduler(SchedulerConfig config)
        : base(config)
    {
    }

    public override float InitNoiseSigma => 1f;

    protected override double[] BuildSchedule(int inferenceSteps)
    {
        var descending = DiscreteTimestepsDescending(inferenceSteps);
        double[] timesteps;
        if (inferenceSteps == 1)
        {
            timesteps = descending;
        }
        else
        {
            // [t₀, t₁, t₁, t₂, …, t_{n−1}]: diffusers' concatenate(ts[:-1], ts[-2:-1], ts[-1:]) reversed.
            timesteps = new double[inferenceSteps + 1];
            timesteps[0] = descending[0];
            Array.Copy(descending, 1, timesteps, 2, inferenceSteps - 1);
            timesteps[1] = descending[1];
        }

        var stride = Config.NumTrainTimesteps / inferenceSteps;
        var finalAlpha = Config.SetAlphaToOne ? 1.0 : AlphasCumprod[0];
        var count = timesteps.Length;
        sampleCoeff = new float[count];
        outputCoeff = new float[count];
        sqrtAlpha = new float[count];
        sqrtOneMinusAlpha = new float[count];
        for (var i = 0; i < count; i++)
        {
            var isRepeat = inferenceSteps > 1 && i == 1;
            var from = isRepeat ? (int)timesteps[i] + stride : (int)timesteps[i];
            var to = isRepeat ? (int)timesteps[i] : (int)timesteps[i] - stride;
            var alpha = AlphasCumprod[from];
            var alphaPrev = to >= 0 ? AlphasCumprod[to] : finalAlpha;
            var denominator = (alpha * Math.Sqrt(1 - alphaPrev)) + Math.Sqrt(alpha * (1 - alpha) * alphaPrev);
            sampleCoeff[i] = (float)Math.Sqrt(alphaPrev / alpha);
            outputCoeff[i] = (float)((alphaPrev - alpha) / denominator);
            sqrtAlpha[i] = (float)Math.Sqrt(alpha);
            sqrtOneMinusAlpha[i] = (float)Math.Sqrt(1 - alpha);
        }

        historyCount = 0;
        lastStepIndex = -1;
        hasWarmupSample = false;
        return timesteps;
    }

    protected override void StepCore(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var fresh = lastStepIndex < 0;
        if (!fresh && stepIndex != lastStepIndex + 1)
        {
            throw new InvalidOperationException(
                $"PLMS keeps history: expected step {lastStepIndex + 1}, got {stepIndex}. Call SetTimesteps to start a new run.");
        }

        EnsureBuffers(sample.Length);
        lastStepIndex = stepIndex;
        var isRepeat = InferenceSteps > 1 && stepIndex == 1;

        if (isRepeat)
        {
            if (hasWarmupSample)
            {
                RedoFirstStep(modelOutput, sample);
            }

            return;
        }

        if (stepIndex == 0)
        {
            sample.CopyTo(warmupSample);
            hasWarmupSample = true;
        }

        Push(modelOutput);
        Transfer(stepIndex, sample);
    }

    protected override void AddNoiseCore(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination) =>
        AddNoiseVariancePreserving(original, noise, AlphaCumprodAt(Timesteps[stepIndex]), destination);

    /// <summary>Step 1: x_{t₁} = φ(x_{t₀}, (ε₀ + ε₁)/2, t₀ → t₁), overwriting step 0's first-order result.</summary>
    private void RedoFirstStep(ReadOnlySpan<float> modelOutput, Span<float> sample)
    {
        var a = sampleCoeff[1];
        var c = outputCoeff[1];
        var sa = sqrtAlpha[1];
        var sb = sqrtOneMinusAlpha[1];
        var vPrediction = Prediction == PredictionKind.VPrediction;
        var first = history[historyCount - 1];
        for (var j = 0; j < sample.Length; j++)
        {
            var x = warmupSample[j];
            var combined = (modelOutput[j] + first[j]) / 2;
            var eps = vPrediction ? (sa * combined) + (sb * x) : combined;
            sample[j] = (a * x) - (c * eps);
        }

        hasWarmupSample = false;
    }

    /// <summary>x ← φ(x, ε', t → t − T div n) with ε' the Adams–Bashforth combination the history length allows.</summary>
    private void Transfer(int stepIndex, Span<float> sample)
    {
        var a = sampleCoeff[stepIndex];
        var c = outputCoeff[stepIndex];
        var sa = sqrtAlpha[stepIndex];
        var sb = sqrtOneMinusAlpha[stepIndex];
        var vPrediction = Prediction == PredictionKind.VPrediction;
        var e0 = history[historyCount - 1];
        var e1 = historyCount > 1 ? history[historyCount - 2] : e0;
        var e2 = historyCount > 2 ? history[historyCount - 3] : e0;
        var e3 = historyCount > 3 ? history[historyCount - 4] : e0;
        for (var j = 0; j < sample.Length; j++)
        {
            var combined = historyCount switch
            {
                1 => e0[j],
                2 => ((3 * e0[j]) - e1[j]) / 2,
                3 => ((23 * e0[j]) - (16 * e1[j]) + (5 * e2[j])) / 12,
                _ => (1f / 24) * ((55 * e0[j]) - (59 * e1[j]) + (37 * e2[j]) - (9 * e3[j])),
            };
            var x = sample[j];
            var eps = vPrediction ? (sa * combined) + (sb * x) : combined;
            sample[j] = (a * x) - (c * eps);
        }
    }

    private void Push(ReadOnlySpan<float> modelOutput)
    {
        if (historyCount == MaxHistory)
        {
            var recycled = history[0];
            Array.Copy(history, 1, history, 0, MaxHistory - 1);
            history[MaxHistory - 1] = recycled;
        }
        else
        {
            historyCount++;
        }

        modelOutput.CopyTo(history[historyCount - 1]);
    }

    private void EnsureBuffers(int length)
    {
        if (warmupSample.Length == length)
        {
            return;
        }

        if (historyCount > 0)
        {
            throw new InvalidOperationException($"The sample length changed mid-run from {warmupSample.Length} to {length}.");
        }

        warmupSample = new float[length];
        for (var k = 0; k < MaxHistory; k++)
        {
            history[k] = new float[length];
        }
    }
}
