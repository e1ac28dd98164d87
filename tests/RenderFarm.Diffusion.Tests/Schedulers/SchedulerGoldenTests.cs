using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Tests.Schedulers;

/// <summary>
/// Every Step output of a full 10-step run (4 for LCM) on a fixed 16-value input, with model outputs and noise from fixed
/// formulas, pinned against <see cref="ReferenceMath"/> (double precision, written from the published equations).
/// Production works in float per element, hence the 1e-5 tolerance; any change of formula moves values by far more.
/// </summary>
public sealed class SchedulerGoldenTests
{
    private const int Length = 16;
    private const double Tolerance = 1e-5;
    private static readonly SchedulerConfig Sd = SchedulerConfig.StableDiffusion1;

    private static double[] Input() => Enumerable.Range(0, Length).Select(j => 1.5 * Math.Sin((1.3 * j) + 0.5)).ToArray();

    private static double[] ModelOutput(int step) => Enumerable.Range(0, Length).Select(j => 0.8 * Math.Cos((0.9 * j) + (0.37 * step))).ToArray();

    private static double[] Noise(int step) => Enumerable.Range(0, Length).Select(j => 1.1 * Math.Sin((2.1 * j) + 0.3 + step)).ToArray();

    private static readonly int[] Leading10 = [901, 801, 701, 601, 501, 401, 301, 201, 101, 1];

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.7)]
    public void Ddim_steps_match_the_reference(double eta)
    {
        AssertRunMatches(new DdimScheduler(Sd, eta), 10, (x, i) =>
            ReferenceMath.Ddim(x, ModelOutput(i), Leading10[i], Leading10[i] - 100, eta, Noise(i)));
    }

    [Fact]
    public void Plms_steps_match_the_reference()
    {
        double[] timesteps = [901, 801, 801, 701, 601, 501, 401, 301, 201, 101, 1];
        var reference = new ReferenceMath.Plms(stride: 100);

        AssertRunMatches(new PndmScheduler(Sd), 10, (x, i) => reference.Step(x, ModelOutput(i), (int)timesteps[i]));
    }

    [Fact]
    public void Euler_steps_match_the_reference()
    {
        var sigmas = TableSigmas(Leading10);

        AssertRunMatches(new EulerDiscreteScheduler(Sd), 10, (x, i) => ReferenceMath.Euler(x, ModelOutput(i), sigmas[i], sigmas[i + 1]));
    }

    [Fact]
    public void Euler_ancestral_steps_match_the_reference()
    {
        var sigmas = TableSigmas(Leading10);

        AssertRunMatches(new EulerAncestralDiscreteScheduler(Sd), 10, (x, i) =>
            ReferenceMath.EulerAncestral(x, ModelOutput(i), sigmas[i], sigmas[i + 1], Noise(i)));
    }

    [Fact]
    public void Lms_steps_match_the_reference()
    {
        var reference = new ReferenceMath.Lms(TableSigmas(Leading10));

        AssertRunMatches(new LmsDiscreteScheduler(Sd), 10, (x, i) => reference.Step(x, ModelOutput(i), i));
    }

    [Fact]
    public void Dpm_plus_plus_2m_steps_match_the_reference()
    {
        // DPM leading, 10 steps: stride 1000 div 11 = 90 → 901, 811, …, 91.
        var timesteps = Enumerable.Range(0, 10).Select(k => 901 - (90 * k)).ToArray();
        var reference = new ReferenceMath.DpmPlusPlus2M(TableSigmas(timesteps));

        AssertRunMatches(new DpmSolverMultistepScheduler(Sd, useKarrasSigmas: false), 10, (x, i) => reference.Step(x, ModelOutput(i), i));
    }

    [Fact]
    public void Dpm_plus_plus_2m_karras_steps_match_the_reference()
    {
        var karras = ReferenceMath.KarrasSigmas(ReferenceMath.SigmaAt(0), ReferenceMath.SigmaAt(999), 10);
        var reference = new ReferenceMath.DpmPlusPlus2M([.. karras, 0]);

        AssertRunMatches(new DpmSolverMultistepScheduler(Sd, useKarrasSigmas: true), 10, (x, i) => reference.Step(x, ModelOutput(i), i));
    }

    [Fact]
    public void Lcm_steps_match_the_reference()
    {
        int[] timesteps = [999, 759, 499, 259];

        AssertRunMatches(new LcmScheduler(Sd), 4, (x, i) =>
            ReferenceMath.Lcm(x, ModelOutput(i), timesteps[i], i < 3 ? timesteps[i + 1] : null, i < 3 ? Noise(i) : null));
    }

    [Fact]
    public void Golden_runs_are_sensitive_to_the_formula()
    {
        // Guards the tolerance: a DDIM step with a slightly different ᾱ_prev (the neighbouring timestep) is far outside it.
        var x = Input();
        var right = ReferenceMath.Ddim(x, ModelOutput(0), 901, 801, 0, null);
        var wrong = ReferenceMath.Ddim(x, ModelOutput(0), 901, 800, 0, null);

        right.Zip(wrong, (a, b) => Math.Abs(a - b)).Max().ShouldBeGreaterThan(100 * Tolerance);
    }

    private static double[] TableSigmas(int[] timesteps) => [.. timesteps.Select(ReferenceMath.SigmaAt), 0];

    private static void AssertRunMatches(IScheduler scheduler, int steps, Func<double[], int, double[]> referenceStep)
    {
        scheduler.SetTimesteps(steps);
        var expected = Input();
        var sample = expected.Select(v => (float)v).ToArray();
        for (var i = 0; i < scheduler.Timesteps.Count; i++)
        {
            var output = ModelOutput(i).Select(v => (float)v).ToArray();
            var noise = Noise(i).Select(v => (float)v).ToArray();
            scheduler.Step(output, i, sample, noise);
            expected = referenceStep(expected, i);

            SamplingHarness.ShouldAllBeClose(sample, expected, Tolerance, $"step {i}");
        }
    }
}
