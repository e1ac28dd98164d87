namespace RenderFarm.Domain.Requests;

/// <summary>
/// Sampler names a job may ask for. The engine owns the real list (<c>RenderFarm.Diffusion.Schedulers.SamplerNames</c>),
/// but the domain must not reference the engine, so it keeps this copy; a test in RenderFarm.Cli.Tests (which
/// sees both projects) asserts the two lists are equal, so adding a sampler to one fails the build until the
/// other follows.
/// </summary>
public static class KnownSamplers
{
    public const string Ddim = "ddim";
    public const string Plms = "plms";
    public const string Euler = "euler";
    public const string EulerAncestral = "euler_a";
    public const string Lms = "lms";
    public const string DpmPlusPlus2M = "dpmpp_2m";
    public const string DpmPlusPlus2MKarras = "dpmpp_2m_karras";
    public const string Lcm = "lcm";

    /// <summary>
    /// LCM samples from its 50-step distillation schedule (SD's <c>original_inference_steps</c>) and cannot take more
    /// steps than that; the engine refuses them, so the domain does too (the CLI test checks both agree).
    /// </summary>
    public const int LcmMaxSteps = 50;

    public static IReadOnlyList<string> All { get; } =
        [Ddim, Plms, Euler, EulerAncestral, Lms, DpmPlusPlus2M, DpmPlusPlus2MKarras, Lcm];

    // Ordinal: sampler names are identifiers on the wire, and "Euler" must not quietly mean "euler".
    private static readonly HashSet<string> Set = new(All, StringComparer.Ordinal);

    public static bool Contains(string? name) => name is not null && Set.Contains(name);
}
