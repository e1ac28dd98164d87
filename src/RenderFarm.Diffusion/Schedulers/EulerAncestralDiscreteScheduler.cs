namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// Ancestral Euler (k-diffusion <c>sample_euler_ancestral</c>), following diffusers' <c>EulerAncestralDiscreteScheduler</c>:
/// an Euler step down to σ_down, then fresh noise of scale σ_up, where σ_up = √(σ_to²(σ_from² − σ_to²)/σ_from²) and
/// σ_down = √(σ_to² − σ_up²). On the last step σ_to = 0 makes σ_up = 0 and σ_down = 0, so the last step lands on the
/// x₀ estimate and uses no noise (diffusers still draws a tensor there and multiplies it by zero).
/// </summary>
public sealed class EulerAncestralDiscreteScheduler : SigmaSchedulerBase
{
    private float[] sigmaUp = [];
    private float[] sigmaDown = [];

    public EulerAncestralDiscreteScheduler(SchedulerConfig config)
        : base(config)
    {
    }

    protected override void OnSigmasBuilt(int inferenceSteps)
    {
        sigmaUp = new float[inferenceSteps];
        sigmaDown = new float[inferenceSteps];
        for (var i = 0; i < inferenceSteps; i++)
        {
            var from = Sigmas[i];
            var to = Sigmas[i + 1];
            var up = Math.Sqrt(to * to * ((from * from) - (to * to)) / (from * from));
            sigmaUp[i] = (float)up;
            sigmaDown[i] = (float)Math.Sqrt(Math.Max(0, (to * to) - (up * up)));
        }
    }

    protected override bool NeedsNoiseCore(int stepIndex) => sigmaUp[stepIndex] > 0;

    protected override void StepCore(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var estimator = EstimatorAt(stepIndex);
        var sigma = (float)Sigmas[stepIndex];
        var dt = sigmaDown[stepIndex] - sigma;
        var up = sigmaUp[stepIndex];
        for (var j = 0; j < sample.Length; j++)
        {
            var x = sample[j];
            var derivative = (x - estimator.Estimate(x, modelOutput[j])) / sigma;
            var next = x + (derivative * dt);
            if (up > 0)
            {
                next += noise[j] * up;
            }

            sample[j] = next;
        }
    }
}
