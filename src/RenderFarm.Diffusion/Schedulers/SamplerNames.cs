namespace RenderFarm.Diffusion.Schedulers;

/// <summary>Sampler names as they appear in the API, the CLI and PNG parameters. These strings are wire format.</summary>
public static class SamplerNames
{
    public const string Ddim = "ddim";
    public const string Plms = "plms";
    public const string Euler = "euler";
    public const string EulerAncestral = "euler_a";
    public const string Lms = "lms";
    public const string DpmPlusPlus2M = "dpmpp_2m";
    public const string DpmPlusPlus2MKarras = "dpmpp_2m_karras";
    public const string Lcm = "lcm";

    public static IReadOnlyList<string> All { get; } =
        [Ddim, Plms, Euler, EulerAncestral, Lms, DpmPlusPlus2M, DpmPlusPlus2MKarras, Lcm];
}
