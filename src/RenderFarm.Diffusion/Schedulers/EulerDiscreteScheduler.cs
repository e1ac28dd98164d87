namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// Euler method on the probability-flow ODE dx/dσ = (x − x₀)/σ (Karras et al. 2022, Algorithm 2 with s_churn = 0),
/// following diffusers' <c>EulerDiscreteScheduler</c>: x ← x + (x − x₀)/σ_i·(σ_{i+1} − σ_i). Deterministic, stateless.
/// </summary>
public sealed class EulerDiscreteScheduler : SigmaSchedulerBase
{
    public EulerDiscreteScheduler(SchedulerConfig config)
        : base(config)
    {
    }

    protected override void StepCore(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var estimator = EstimatorAt(stepIndex);
        var sigma = (float)Sigmas[stepIndex];
        var dt = (float)(Sigmas[stepIndex + 1] - Sigmas[stepIndex]);
        for (var j = 0; j < sample.Length; j++)
        {
            var x = sample[j];
            var derivative = (x - estimator.Estimate(x, modelOutput[j])) / sigma;
            sample[j] = x + (derivative * dt);
        }
    }
}
