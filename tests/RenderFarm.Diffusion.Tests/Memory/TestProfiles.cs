using RenderFarm.Diffusion.Memory;

namespace RenderFarm.Diffusion.Tests.Memory;

/// <summary>Round-number profiles, so a test can say exactly which budget each strategy needs.</summary>
internal static class TestProfiles
{
    public const long MiB = 1L << 20;
    public const long GiB = 1L << 30;

    /// <summary>A CPU model shaped like the tiny model: quadratic UNet attention, linear VAE.</summary>
    public static MemoryProfile Cpu(string model = "test") => new()
    {
        Model = model,
        Kind = MemoryProfile.Measured,
        Device = MemoryProfile.CpuDevice,
        BaseBytes = 100 * MiB,
        TextEncoder = Component(50 * MiB, new Scaling(10 * MiB, 1 * MiB, 0)),
        Unet = Component(400 * MiB, new Scaling(20 * MiB, 4096, 16)),
        VaeDecoder = Component(100 * MiB, new Scaling(10 * MiB, 20_000, 0)),
        VaeEncoder = Component(80 * MiB, new Scaling(10 * MiB, 20_000, 0)),
    };

    /// <summary>A model whose VAE, not its UNet, is the first thing that stops fitting.</summary>
    public static MemoryProfile VaeHeavy() => Cpu("vae-heavy") with
    {
        VaeDecoder = Component(100 * MiB, new Scaling(10 * MiB, 400_000, 0)),
    };

    private static ComponentProfile Component(long weights, Scaling activation) => new()
    {
        WeightBytes = weights,
        ActivationBytes = activation,
        Seconds = new Scaling(0.01, 1e-5, 1e-9),
        LoadSeconds = 0.5,
    };
}
