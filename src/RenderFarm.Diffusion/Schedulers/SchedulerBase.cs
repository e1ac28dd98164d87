namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// Template for the samplers: owns the training noise schedule (betas → ᾱ → σ tables), config validation,
/// the per-run timestep list and argument checks, and leaves the timestep choice and the update rule to subclasses.
/// </summary>
/// <remarks>
/// Tables are computed in <see cref="double"/>. Diffusers builds betas and ᾱ as float32 torch tensors and the
/// inference sigmas in float64 numpy before casting to float32; computing everything in double keeps the tables
/// within ~1e-7 relative of diffusers' values while keeping our own tests free of float32 table noise.
/// Per-element work (the <see cref="Step"/> update over the latent) is float, as diffusers does it on float32 tensors.
/// </remarks>
public abstract class SchedulerBase : IScheduler
{
    private double[] timesteps = [];

    protected SchedulerBase(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.NumTrainTimesteps < 2)
        {
            throw new ArgumentException($"num_train_timesteps must be at least 2, got {config.NumTrainTimesteps}.", nameof(config));
        }

        Config = config;
        Prediction = config.PredictionType switch
        {
            "epsilon" => PredictionKind.Epsilon,
            "v_prediction" => PredictionKind.VPrediction,
            _ => throw new ArgumentException(
                $"prediction_type '{config.PredictionType}' is not supported; use 'epsilon' or 'v_prediction'.", nameof(config)),
        };
        Spacing = config.TimestepSpacing switch
        {
            "leading" => TimestepSpacing.Leading,
            "linspace" => TimestepSpacing.Linspace,
            "trailing" => TimestepSpacing.Trailing,
            _ => throw new ArgumentException(
                $"timestep_spacing '{config.TimestepSpacing}' is not supported; use 'leading', 'linspace' or 'trailing'.", nameof(config)),
        };

        AlphasCumprod = ComputeAlphasCumprod(config);
        TrainSigmas = new double[AlphasCumprod.Length];
        LogTrainSigmas = new double[AlphasCumprod.Length];
        for (var t = 0; t < AlphasCumprod.Length; t++)
        {
            TrainSigmas[t] = Math.Sqrt((1 - AlphasCumprod[t]) / AlphasCumprod[t]);
            LogTrainSigmas[t] = Math.Log(TrainSigmas[t]);
        }
    }

    protected enum PredictionKind
    {
        Epsilon,
        VPrediction,
    }

    protected enum TimestepSpacing
    {
        Leading,
        Linspace,
        Trailing,
    }

    protected SchedulerConfig Config { get; }

    protected PredictionKind Prediction { get; }

    protected TimestepSpacing Spacing { get; }

    /// <summary>ᾱ_t = ∏_{s ≤ t} (1 − β_s) for every training timestep.</summary>
    protected double[] AlphasCumprod { get; }

    /// <summary>σ_t = √((1 − ᾱ_t) / ᾱ_t): the k-diffusion noise level of every training timestep, ascending in t.</summary>
    protected double[] TrainSigmas { get; }

    protected double[] LogTrainSigmas { get; }

    /// <summary>Number of inference steps requested by the last <see cref="SetTimesteps"/>.</summary>
    protected int InferenceSteps { get; private set; }

    public IReadOnlyList<double> Timesteps => timesteps;

    public abstract float InitNoiseSigma { get; }

    public void SetTimesteps(int inferenceSteps)
    {
        if (inferenceSteps < 1 || inferenceSteps > Config.NumTrainTimesteps)
        {
            throw new ArgumentOutOfRangeException(
                nameof(inferenceSteps), inferenceSteps, $"Must be between 1 and num_train_timesteps ({Config.NumTrainTimesteps}).");
        }

        InferenceSteps = inferenceSteps;
        timesteps = BuildSchedule(inferenceSteps);
    }

    /// <summary>Computes the run's tables and returns the timesteps the loop visits; also resets multistep history.</summary>
    protected abstract double[] BuildSchedule(int inferenceSteps);

    public virtual void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex)
    {
        CheckStepIndex(stepIndex);
        CheckSameLength(sample.Length, destination.Length, nameof(destination));
        sample.CopyTo(destination);
    }

    public bool NeedsNoise(int stepIndex)
    {
        CheckStepIndex(stepIndex);
        return NeedsNoiseCore(stepIndex);
    }

    protected virtual bool NeedsNoiseCore(int stepIndex) => false;

    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise)
    {
        CheckStepIndex(stepIndex);
        CheckSameLength(sample.Length, modelOutput.Length, nameof(modelOutput));
        if (NeedsNoiseCore(stepIndex))
        {
            CheckSameLength(sample.Length, noise.Length, nameof(noise));
        }

        StepCore(modelOutput, stepIndex, sample, noise);
    }

    /// <summary>The update rule; arguments are validated (lengths match, index in range, noise present when needed).</summary>
    protected abstract void StepCore(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise);

    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        CheckStepIndex(stepIndex);
        CheckSameLength(original.Length, noise.Length, nameof(noise));
        CheckSameLength(original.Length, destination.Length, nameof(destination));
        AddNoiseCore(original, noise, stepIndex, destination);
    }

    protected abstract void AddNoiseCore(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination);

    /// <summary>Variance-preserving forward process q(x_t | x_0) = √ᾱ x_0 + √(1 − ᾱ) ε, as DDPM-family add_noise does it.</summary>
    protected static void AddNoiseVariancePreserving(
        ReadOnlySpan<float> original, ReadOnlySpan<float> noise, double alphaCumprod, Span<float> destination)
    {
        var signal = (float)Math.Sqrt(alphaCumprod);
        var noiseScale = (float)Math.Sqrt(1 - alphaCumprod);
        for (var j = 0; j < original.Length; j++)
        {
            destination[j] = (signal * original[j]) + (noiseScale * noise[j]);
        }
    }

    /// <summary>
    /// The integer timesteps shared by DDIM, PNDM (before its reordering) and DDPM, descending, per diffusers'
    /// <c>set_timesteps</c>: leading = k·(T div n) + steps_offset; linspace = round(linspace(0, T − 1, n));
    /// trailing = round(T − k·T/n) − 1. numpy's round is half-to-even, which is also <see cref="Math.Round(double)"/>'s default.
    /// </summary>
    protected double[] DiscreteTimestepsDescending(int inferenceSteps)
    {
        var trainSteps = Config.NumTrainTimesteps;
        var result = new double[inferenceSteps];
        switch (Spacing)
        {
            case TimestepSpacing.Leading:
                var ratio = trainSteps / inferenceSteps;
                var offset = LeadingOffset((inferenceSteps - 1) * ratio);
                for (var k = 0; k < inferenceSteps; k++)
                {
                    result[inferenceSteps - 1 - k] = (k * ratio) + offset;
                }

                break;
            case TimestepSpacing.Linspace:
                var points = Linspace(0, trainSteps - 1, inferenceSteps);
                for (var k = 0; k < inferenceSteps; k++)
                {
                    result[inferenceSteps - 1 - k] = Math.Round(points[k]);
                }

                break;
            default:
                var stride = (double)trainSteps / inferenceSteps;
                for (var k = 0; k < inferenceSteps; k++)
                {
                    result[k] = Math.Round(trainSteps - (k * stride)) - 1;
                }

                break;
        }

        if (result[0] > trainSteps - 1 || result[^1] < 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(inferenceSteps), inferenceSteps, $"Timesteps {result[^1]}…{result[0]} fall outside the training range [0, {trainSteps - 1}].");
        }

        return result;
    }

    /// <summary>
    /// steps_offset, reduced only as far as needed to keep the largest leading timestep inside the training range.
    /// diffusers indexes past its tables (an IndexError) when steps = T with SD's offset of 1; the farm accepts up to
    /// 1000 steps, so at that edge the schedule uses every timestep 999…0 instead. Below the edge nothing changes.
    /// </summary>
    protected int LeadingOffset(int largestUnshifted) =>
        Math.Min(Config.StepsOffset, Config.NumTrainTimesteps - 1 - largestUnshifted);

    /// <summary>numpy.linspace with the endpoint included: start + k·step, the last point pinned to <paramref name="stop"/>.</summary>
    protected static double[] Linspace(double start, double stop, int count)
    {
        var points = new double[count];
        if (count == 1)
        {
            points[0] = start;
            return points;
        }

        var step = (stop - start) / (count - 1);
        for (var k = 0; k < count; k++)
        {
            points[k] = start + (k * step);
        }

        points[^1] = stop;
        return points;
    }

    /// <summary>np.interp of the σ table at a (possibly fractional) timestep: linear in σ, as diffusers' non-Karras path does.</summary>
    protected double InterpolateTrainSigma(double timestep)
    {
        if (timestep <= 0)
        {
            return TrainSigmas[0];
        }

        var last = TrainSigmas.Length - 1;
        if (timestep >= last)
        {
            return TrainSigmas[last];
        }

        var low = (int)Math.Floor(timestep);
        var w = timestep - low;
        return ((1 - w) * TrainSigmas[low]) + (w * TrainSigmas[low + 1]);
    }

    /// <summary>
    /// diffusers' <c>_sigma_to_t</c>: the fractional timestep whose log σ, interpolated linearly between neighbouring
    /// training timesteps, equals log <paramref name="sigma"/> (clamped to the table's range).
    /// </summary>
    protected double SigmaToTimestep(double sigma)
    {
        var logSigma = Math.Log(Math.Max(sigma, 1e-10));
        var logs = LogTrainSigmas;

        // Last index whose log σ is ≤ the target (log σ ascends with t), kept one short of the end so high = low + 1 exists.
        var low = 0;
        for (var t = 0; t < logs.Length; t++)
        {
            if (logSigma - logs[t] >= 0)
            {
                low = t;
            }
        }

        low = Math.Min(low, logs.Length - 2);
        var w = (logs[low] - logSigma) / (logs[low] - logs[low + 1]);
        w = Math.Clamp(w, 0, 1);
        return ((1 - w) * low) + (w * (low + 1));
    }

    /// <summary>Karras et al. (2022) schedule: σ^(1/ρ) evenly spaced from σ_max to σ_min, ρ = 7.</summary>
    protected static double[] KarrasSigmas(double sigmaMin, double sigmaMax, int count)
    {
        const double Rho = 7.0;
        var ramp = Linspace(0, 1, count);
        var minInvRho = Math.Pow(sigmaMin, 1 / Rho);
        var maxInvRho = Math.Pow(sigmaMax, 1 / Rho);
        var sigmas = new double[count];
        for (var k = 0; k < count; k++)
        {
            sigmas[k] = Math.Pow(maxInvRho + (ramp[k] * (minInvRho - maxInvRho)), Rho);
        }

        return sigmas;
    }

    /// <summary>ᾱ at a timestep taken from <see cref="Timesteps"/> (integral for the DDPM-family samplers).</summary>
    protected double AlphaCumprodAt(double timestep) => AlphasCumprod[(int)timestep];

    protected void CheckStepIndex(int stepIndex)
    {
        if (timesteps.Length == 0)
        {
            throw new InvalidOperationException("Call SetTimesteps before stepping the scheduler.");
        }

        if ((uint)stepIndex >= (uint)timesteps.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(stepIndex), stepIndex, $"Must be within [0, {timesteps.Length}).");
        }
    }

    private static void CheckSameLength(int expected, int actual, string paramName)
    {
        if (expected != actual)
        {
            throw new ArgumentException($"Expected {expected} values (the sample's length), got {actual}.", paramName);
        }
    }

    private static double[] ComputeAlphasCumprod(SchedulerConfig config)
    {
        var count = config.NumTrainTimesteps;
        var betas = config.BetaSchedule switch
        {
            // SD's schedule: linear in √β, then squared.
            "scaled_linear" => Square(Linspace(Math.Sqrt(config.BetaStart), Math.Sqrt(config.BetaEnd), count)),
            "linear" => Linspace(config.BetaStart, config.BetaEnd, count),
            _ => throw new ArgumentException(
                $"beta_schedule '{config.BetaSchedule}' is not supported; use 'scaled_linear' or 'linear'.", nameof(config)),
        };

        var alphasCumprod = new double[count];
        var product = 1.0;
        for (var t = 0; t < count; t++)
        {
            product *= 1 - betas[t];
            alphasCumprod[t] = product;
        }

        return alphasCumprod;

        static double[] Square(double[] values)
        {
            for (var k = 0; k < values.Length; k++)
            {
                values[k] *= values[k];
            }

            return values;
        }
    }
}
