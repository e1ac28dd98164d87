using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Tests.Schedulers;

/// <summary>
/// A model whose prediction is exact for a known clean latent μ: for the UNet input x_in at timestep t,
/// ε = (x_in − √ᾱ_t·μ)/√(1 − ᾱ_t) and v = √ᾱ_t·ε − √(1 − ᾱ_t)·μ. The k-diffusion samplers feed x/√(σ² + 1), which is
/// the same relation in σ form (ᾱ = 1/(1 + σ²)); fractional t interpolates log σ, the inverse of _sigma_to_t.
/// </summary>
internal sealed class AnalyticOracle(float[] target, bool vPrediction = false)
{
    public float[] Target { get; } = target;

    public float[] Predict(ReadOnlySpan<float> modelInput, double timestep)
    {
        var alpha = ReferenceMath.AlphaCumprodAtFractional(timestep);
        var output = new float[modelInput.Length];
        for (var j = 0; j < output.Length; j++)
        {
            var eps = (modelInput[j] - (Math.Sqrt(alpha) * Target[j])) / Math.Sqrt(1 - alpha);
            output[j] = (float)(vPrediction ? (Math.Sqrt(alpha) * eps) - (Math.Sqrt(1 - alpha) * Target[j]) : eps);
        }

        return output;
    }
}

internal static class SamplingHarness
{
    /// <summary>Deterministic standard-normal values (Box–Muller over a seeded <see cref="Random"/>).</summary>
    public static float[] Gaussian(int length, int seed)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (var j = 0; j < length; j++)
        {
            var u1 = 1 - random.NextDouble();
            var u2 = random.NextDouble();
            values[j] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }

        return values;
    }

    public static float[] Scaled(float[] values, float scale) => values.Select(v => v * scale).ToArray();

    /// <summary>The pipeline's denoising loop: scale the input, ask the model, step (with fresh noise when asked).</summary>
    public static float[] Run(IScheduler scheduler, float[] start, AnalyticOracle model, int startIndex = 0, int noiseSeed = 99)
    {
        var sample = (float[])start.Clone();
        var input = new float[sample.Length];
        for (var i = startIndex; i < scheduler.Timesteps.Count; i++)
        {
            scheduler.ScaleModelInput(sample, input, i);
            var output = model.Predict(input, scheduler.Timesteps[i]);
            var noise = scheduler.NeedsNoise(i) ? Gaussian(sample.Length, noiseSeed + i) : [];
            scheduler.Step(output, i, sample, noise);
        }

        return sample;
    }

    public static void ShouldAllBeClose(float[] actual, double[] expected, double tolerance, string because)
    {
        actual.Length.ShouldBe(expected.Length);
        var worst = 0.0;
        var worstIndex = 0;
        for (var j = 0; j < actual.Length; j++)
        {
            var error = Math.Abs(actual[j] - expected[j]) / (1 + Math.Abs(expected[j]));
            if (error > worst)
            {
                worst = error;
                worstIndex = j;
            }
        }

        worst.ShouldBeLessThan(tolerance, $"{because}: element {worstIndex} is {actual[worstIndex]}, expected {expected[worstIndex]}");
    }

    public static void ShouldAllBeClose(float[] actual, float[] expected, double tolerance, string because) =>
        ShouldAllBeClose(actual, expected.Select(v => (double)v).ToArray(), tolerance, because);
}
