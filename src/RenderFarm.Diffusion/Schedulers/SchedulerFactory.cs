namespace RenderFarm.Diffusion.Schedulers;

/// <summary>Creates the sampler behind each wire name in <see cref="SamplerNames"/>.</summary>
public static class SchedulerFactory
{
    /// <summary>
    /// Creates a fresh scheduler for one run. <paramref name="eta"/> is DDIM's η (0 = deterministic) and is ignored by
    /// the other samplers, whose stochasticity (euler_a, lcm) is fixed by their definition.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="SamplerNames.All"/>; the message lists them.</exception>
    public static IScheduler Create(string samplerName, SchedulerConfig config, double eta = 0)
    {
        ArgumentNullException.ThrowIfNull(samplerName);
        ArgumentNullException.ThrowIfNull(config);
        return samplerName switch
        {
            SamplerNames.Ddim => new DdimScheduler(config, eta),
            SamplerNames.Plms => new PndmScheduler(config),
            SamplerNames.Euler => new EulerDiscreteScheduler(config),
            SamplerNames.EulerAncestral => new EulerAncestralDiscreteScheduler(config),
            SamplerNames.Lms => new LmsDiscreteScheduler(config),
            SamplerNames.DpmPlusPlus2M => new DpmSolverMultistepScheduler(config, useKarrasSigmas: false),
            SamplerNames.DpmPlusPlus2MKarras => new DpmSolverMultistepScheduler(config, useKarrasSigmas: true),
            SamplerNames.Lcm => new LcmScheduler(config),
            _ => throw new ArgumentException(
                $"Unknown sampler '{samplerName}'. Valid samplers: {string.Join(", ", SamplerNames.All)}.", nameof(samplerName)),
        };
    }
}
