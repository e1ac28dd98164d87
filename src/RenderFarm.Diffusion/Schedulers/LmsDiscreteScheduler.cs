namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// Linear multistep (order 4) on dx/dσ = d(x, σ) = (x − x₀)/σ, following diffusers' <c>LMSDiscreteScheduler</c>:
/// x_{i+1} = x_i + Σ_k c_{i,k}·d_{i−k}, where c_{i,k} = ∫_{σ_i}^{σ_{i+1}} ℓ_k(τ) dτ and ℓ_k is the Lagrange basis
/// polynomial of node σ_{i−k} over the last <c>order</c> nodes.
/// </summary>
/// <remarks>
/// Diffusers integrates ℓ_k with <c>scipy.integrate.quad</c>. ℓ_k has degree order − 1 ≤ 3, and two-point
/// Gauss–Legendre quadrature is exact for polynomials up to degree 3, so we get the integral exactly (to rounding)
/// in closed form, once per run (at SetTimesteps) for every step and every order the history can have.
/// The order is min(derivatives seen since the run started, 4): identical to diffusers when the run starts at step 0;
/// for an img2img run that starts later, diffusers pairs order-(i+1) coefficients with a shorter history, which we
/// deliberately do not reproduce.
/// </remarks>
public sealed class LmsDiscreteScheduler : SigmaSchedulerBase
{
    private const int MaxOrder = 4;

    // coefficients[(stepIndex * MaxOrder + order − 1) * MaxOrder + k]: weight of the derivative from step stepIndex − k.
    private double[] coefficients = [];
    private readonly float[][] derivatives = new float[MaxOrder][];
    private int derivativeCount;
    private int lastStepIndex = -1;

    public LmsDiscreteScheduler(SchedulerConfig config)
        : base(config)
    {
    }

    protected override void OnSigmasBuilt(int inferenceSteps)
    {
        coefficients = new double[inferenceSteps * MaxOrder * MaxOrder];
        for (var i = 0; i < inferenceSteps; i++)
        {
            for (var order = 1; order <= Math.Min(i + 1, MaxOrder); order++)
            {
                for (var k = 0; k < order; k++)
                {
                    coefficients[(((i * MaxOrder) + order - 1) * MaxOrder) + k] = IntegrateLagrangeBasis(i, order, k);
                }
            }
        }

        derivativeCount = 0;
        lastStepIndex = -1;
    }

    protected override void StepCore(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, ReadOnlySpan<float> noise)
    {
        if (lastStepIndex >= 0 && stepIndex != lastStepIndex + 1)
        {
            throw new InvalidOperationException(
                $"LMS keeps history: expected step {lastStepIndex + 1}, got {stepIndex}. Call SetTimesteps to start a new run.");
        }

        EnsureHistory(sample.Length);

        // Newest derivative goes last; the oldest buffer is recycled once the window is full.
        if (derivativeCount == MaxOrder)
        {
            var recycled = derivatives[0];
            Array.Copy(derivatives, 1, derivatives, 0, MaxOrder - 1);
            derivatives[MaxOrder - 1] = recycled;
        }
        else
        {
            derivativeCount++;
        }

        var current = derivatives[derivativeCount - 1];
        var estimator = EstimatorAt(stepIndex);
        var sigma = (float)Sigmas[stepIndex];
        for (var j = 0; j < sample.Length; j++)
        {
            var x = sample[j];
            current[j] = (x - estimator.Estimate(x, modelOutput[j])) / sigma;
        }

        var order = derivativeCount;
        var offset = ((stepIndex * MaxOrder) + order - 1) * MaxOrder;
        var c0 = (float)coefficients[offset];
        var c1 = (float)coefficients[offset + 1];
        var c2 = (float)coefficients[offset + 2];
        var c3 = (float)coefficients[offset + 3];
        var d0 = derivatives[order - 1];
        for (var j = 0; j < sample.Length; j++)
        {
            var update = c0 * d0[j];
            if (order > 1)
            {
                update += c1 * derivatives[order - 2][j];
            }

            if (order > 2)
            {
                update += c2 * derivatives[order - 3][j];
            }

            if (order > 3)
            {
                update += c3 * derivatives[order - 4][j];
            }

            sample[j] += update;
        }

        lastStepIndex = stepIndex;
    }

    private void EnsureHistory(int length)
    {
        var existing = derivatives[0];
        if (existing is not null && existing.Length == length)
        {
            return;
        }

        if (derivativeCount > 0)
        {
            throw new InvalidOperationException($"The sample length changed mid-run from {existing?.Length} to {length}.");
        }

        for (var k = 0; k < MaxOrder; k++)
        {
            derivatives[k] = new float[length];
        }
    }

    /// <summary>∫_{σ_i}^{σ_{i+1}} ℓ_k(τ) dτ by two-point Gauss–Legendre, exact for ℓ_k of degree ≤ 3.</summary>
    private double IntegrateLagrangeBasis(int stepIndex, int order, int k)
    {
        var a = Sigmas[stepIndex];
        var b = Sigmas[stepIndex + 1];
        var mid = (a + b) / 2;
        var half = (b - a) / 2;
        var offset = half / Math.Sqrt(3);
        return half * (Basis(mid - offset) + Basis(mid + offset));

        double Basis(double tau)
        {
            var product = 1.0;
            for (var m = 0; m < order; m++)
            {
                if (m == k)
                {
                    continue;
                }

                product *= (tau - Sigmas[stepIndex - m]) / (Sigmas[stepIndex - k] - Sigmas[stepIndex - m]);
            }

            return product;
        }
    }
}
