namespace RenderFarm.Diffusion.Tests.Schedulers;

/// <summary>
/// An independent double-precision restatement of the published sampler equations (DDIM, PNDM/PLMS, k-diffusion
/// Euler / Euler ancestral / LMS, DPM-Solver++(2M), LCM) for SD 1.x's noise schedule, written from the papers and
/// diffusers' documented formulas, never by calling the production schedulers. It favours the plainest form of each
/// equation over speed, and integrates LMS weights with Simpson's rule (exact for the cubic Lagrange bases) where
/// production uses Gauss–Legendre, so a shared mistake is unlikely.
/// </summary>
internal static class ReferenceMath
{
    public const int TrainSteps = 1000;

    /// <summary>ᾱ_t for SD's scaled_linear betas: β_t = (√0.00085 + (√0.012 − √0.00085)·t/999)².</summary>
    public static readonly double[] AlphasCumprod = BuildAlphasCumprod();

    public static double Sigma(double alphaCumprod) => Math.Sqrt((1 - alphaCumprod) / alphaCumprod);

    public static double SigmaAt(int t) => Sigma(AlphasCumprod[t]);

    /// <summary>ᾱ at a fractional timestep, interpolating log σ linearly between integer timesteps.</summary>
    public static double AlphaCumprodAtFractional(double t)
    {
        var low = (int)Math.Floor(t);
        if (low >= TrainSteps - 1)
        {
            return AlphasCumprod[TrainSteps - 1];
        }

        var w = t - low;
        var logSigma = ((1 - w) * Math.Log(SigmaAt(low))) + (w * Math.Log(SigmaAt(low + 1)));
        var sigma = Math.Exp(logSigma);
        return 1 / (1 + (sigma * sigma));
    }

    /// <summary>Karras et al. (2022) eq. 5 with ρ = 7 over n steps from σ_max to σ_min.</summary>
    public static double[] KarrasSigmas(double sigmaMin, double sigmaMax, int n)
    {
        var result = new double[n];
        for (var i = 0; i < n; i++)
        {
            var ramp = n == 1 ? 0 : (double)i / (n - 1);
            result[i] = Math.Pow(Math.Pow(sigmaMax, 1 / 7.0) + (ramp * (Math.Pow(sigmaMin, 1 / 7.0) - Math.Pow(sigmaMax, 1 / 7.0))), 7);
        }

        return result;
    }

    /// <summary>DDIM (Song et al. eq. 12) from t to prev (prev &lt; 0 means ᾱ_prev = ᾱ₀, SD's set_alpha_to_one = false).</summary>
    public static double[] Ddim(double[] x, double[] eps, int t, int prev, double eta, double[]? noise)
    {
        var a = AlphasCumprod[t];
        var ap = prev >= 0 ? AlphasCumprod[prev] : AlphasCumprod[0];
        var sigma = eta * Math.Sqrt((1 - ap) / (1 - a)) * Math.Sqrt(1 - (a / ap));
        var result = new double[x.Length];
        for (var j = 0; j < x.Length; j++)
        {
            var x0 = (x[j] - (Math.Sqrt(1 - a) * eps[j])) / Math.Sqrt(a);
            result[j] = (Math.Sqrt(ap) * x0) + (Math.Sqrt(1 - ap - (sigma * sigma)) * eps[j]) + (sigma * (noise?[j] ?? 0));
        }

        return result;
    }

    /// <summary>
    /// PLMS as published for SD (diffusers PNDM, skip_prk_steps): a counter-driven loop over the schedule
    /// [t₀, t₁, t₁, t₂, …]; see Liu et al. 2022 and diffusers' step_plms.
    /// </summary>
    public sealed class Plms(int stride)
    {
        private readonly List<double[]> ets = [];
        private double[]? current;
        private int counter;

        public double[] Step(double[] x, double[] modelOutput, int timestep)
        {
            var prev = timestep - stride;
            if (counter != 1)
            {
                if (ets.Count > 3)
                {
                    ets.RemoveAt(0);
                }

                ets.Add(modelOutput);
            }
            else
            {
                prev = timestep;
                timestep += stride;
            }

            double[] eps;
            if (ets.Count == 1 && counter == 0)
            {
                eps = modelOutput;
                current = x;
            }
            else if (ets.Count == 1 && counter == 1)
            {
                eps = Combine((modelOutput, 0.5), (ets[^1], 0.5));
                x = current!;
                current = null;
            }
            else if (ets.Count == 2)
            {
                eps = Combine((ets[^1], 1.5), (ets[^2], -0.5));
            }
            else if (ets.Count == 3)
            {
                eps = Combine((ets[^1], 23 / 12.0), (ets[^2], -16 / 12.0), (ets[^3], 5 / 12.0));
            }
            else
            {
                eps = Combine((ets[^1], 55 / 24.0), (ets[^2], -59 / 24.0), (ets[^3], 37 / 24.0), (ets[^4], -9 / 24.0));
            }

            counter++;
            return Ddim(x, eps, timestep, prev, 0, null);
        }
    }

    public static double[] Euler(double[] x, double[] eps, double sigma, double sigmaNext)
    {
        var result = new double[x.Length];
        for (var j = 0; j < x.Length; j++)
        {
            var x0 = x[j] - (sigma * eps[j]);
            var d = (x[j] - x0) / sigma;
            result[j] = x[j] + (d * (sigmaNext - sigma));
        }

        return result;
    }

    public static double[] EulerAncestral(double[] x, double[] eps, double sigma, double sigmaNext, double[] noise)
    {
        var up = Math.Min(sigmaNext, Math.Sqrt(sigmaNext * sigmaNext * ((sigma * sigma) - (sigmaNext * sigmaNext)) / (sigma * sigma)));
        var down = Math.Sqrt((sigmaNext * sigmaNext) - (up * up));
        var result = new double[x.Length];
        for (var j = 0; j < x.Length; j++)
        {
            var x0 = x[j] - (sigma * eps[j]);
            var d = (x[j] - x0) / sigma;
            result[j] = x[j] + (d * (down - sigma)) + (noise[j] * up);
        }

        return result;
    }

    /// <summary>k-diffusion LMS: weights are ∫ of the Lagrange basis over [σ_i, σ_{i+1}], by Simpson's rule (exact to cubic).</summary>
    public sealed class Lms(double[] sigmas)
    {
        private readonly List<double[]> derivatives = [];

        public double[] Step(double[] x, double[] eps, int i)
        {
            var d = new double[x.Length];
            for (var j = 0; j < x.Length; j++)
            {
                d[j] = eps[j];
            }

            derivatives.Add(d);
            if (derivatives.Count > 4)
            {
                derivatives.RemoveAt(0);
            }

            var order = Math.Min(i + 1, 4);
            var result = (double[])x.Clone();
            for (var k = 0; k < order; k++)
            {
                var weight = Simpson(tau => Basis(tau, i, order, k), sigmas[i], sigmas[i + 1]);
                var dk = derivatives[derivatives.Count - 1 - k];
                for (var j = 0; j < x.Length; j++)
                {
                    result[j] += weight * dk[j];
                }
            }

            return result;
        }

        private double Basis(double tau, int i, int order, int k)
        {
            var product = 1.0;
            for (var m = 0; m < order; m++)
            {
                if (m != k)
                {
                    product *= (tau - sigmas[i - m]) / (sigmas[i - k] - sigmas[i - m]);
                }
            }

            return product;
        }

        private static double Simpson(Func<double, double> f, double a, double b) =>
            (b - a) / 6 * (f(a) + (4 * f((a + b) / 2)) + f(b));
    }

    /// <summary>DPM-Solver++(2M), Lu et al. 2022 Algorithm 2 (midpoint form), on the VP sample with σ-parameterised levels.</summary>
    public sealed class DpmPlusPlus2M(double[] sigmas)
    {
        private double[]? previousX0;

        public double[] Step(double[] x, double[] eps, int i)
        {
            var n = sigmas.Length - 1;
            var (alphaS, sigmaS) = Vp(sigmas[i]);
            var x0 = new double[x.Length];
            for (var j = 0; j < x.Length; j++)
            {
                x0[j] = (x[j] - (sigmaS * eps[j])) / alphaS;
            }

            double[] result;
            if (sigmas[i + 1] == 0)
            {
                result = x0;
            }
            else
            {
                var (alphaT, sigmaT) = Vp(sigmas[i + 1]);
                var h = Lambda(sigmas[i + 1]) - Lambda(sigmas[i]);
                var d = x0;
                if (previousX0 is not null && i < n - 1)
                {
                    var r = (Lambda(sigmas[i]) - Lambda(sigmas[i - 1])) / h;
                    d = new double[x.Length];
                    for (var j = 0; j < x.Length; j++)
                    {
                        d[j] = x0[j] + (1 / (2 * r) * (x0[j] - previousX0[j]));
                    }
                }

                result = new double[x.Length];
                for (var j = 0; j < x.Length; j++)
                {
                    result[j] = (sigmaT / sigmaS * x[j]) - (alphaT * (Math.Exp(-h) - 1) * d[j]);
                }
            }

            previousX0 = x0;
            return result;
        }

        private static (double Alpha, double Sigma) Vp(double sigma) =>
            (1 / Math.Sqrt((sigma * sigma) + 1), sigma / Math.Sqrt((sigma * sigma) + 1));

        private static double Lambda(double sigma) => -Math.Log(sigma);
    }

    /// <summary>LCM multistep sampling (Luo et al. 2023, Algorithm 1) with diffusers' discrete boundary scalings.</summary>
    public static double[] Lcm(double[] x, double[] eps, int t, int? next, double[]? noise)
    {
        var a = AlphasCumprod[t];
        var scaled = 10.0 * t;
        var cSkip = 0.25 / ((scaled * scaled) + 0.25);
        var cOut = scaled / Math.Sqrt((scaled * scaled) + 0.25);
        var result = new double[x.Length];
        for (var j = 0; j < x.Length; j++)
        {
            var x0 = (x[j] - (Math.Sqrt(1 - a) * eps[j])) / Math.Sqrt(a);
            var denoised = (cOut * x0) + (cSkip * x[j]);
            result[j] = next is { } tn
                ? (Math.Sqrt(AlphasCumprod[tn]) * denoised) + (Math.Sqrt(1 - AlphasCumprod[tn]) * noise![j])
                : denoised;
        }

        return result;
    }

    public static double[] Combine(params (double[] Values, double Weight)[] terms)
    {
        var result = new double[terms[0].Values.Length];
        foreach (var (values, weight) in terms)
        {
            for (var j = 0; j < result.Length; j++)
            {
                result[j] += weight * values[j];
            }
        }

        return result;
    }

    private static double[] BuildAlphasCumprod()
    {
        var result = new double[TrainSteps];
        var product = 1.0;
        var lo = Math.Sqrt(0.00085);
        var hi = Math.Sqrt(0.012);
        for (var t = 0; t < TrainSteps; t++)
        {
            var root = lo + ((hi - lo) * t / (TrainSteps - 1));
            product *= 1 - (root * root);
            result[t] = product;
        }

        return result;
    }
}
