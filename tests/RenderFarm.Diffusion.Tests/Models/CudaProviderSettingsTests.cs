using RenderFarm.Diffusion.Models;

namespace RenderFarm.Diffusion.Tests.Models;

/// <summary>
/// What the CUDA execution provider is given, checked as the options dictionary (this machine's ONNX Runtime has no
/// CUDA provider to hand them to): the device a multi-GPU worker chose and the arena cap of its budget.
/// </summary>
public sealed class CudaProviderSettingsTests
{
    [Fact]
    public void The_device_id_is_the_chosen_gpu()
    {
        var settings = OnnxComponent.CudaProviderSettings(new ExecutionOptions { Provider = ExecutionProviderPreference.Cuda, CudaDeviceId = 3 });

        settings.ShouldBe(new Dictionary<string, string> { ["device_id"] = "3" });
    }

    [Fact]
    public void An_arena_limit_caps_the_device_allocator_and_grows_it_only_as_asked()
    {
        var settings = OnnxComponent.CudaProviderSettings(new ExecutionOptions { CudaDeviceId = 1, ArenaLimitBytes = 6L << 30 });

        settings["device_id"].ShouldBe("1");
        settings["gpu_mem_limit"].ShouldBe((6L << 30).ToString(System.Globalization.CultureInfo.InvariantCulture));
        settings["arena_extend_strategy"].ShouldBe("kSameAsRequested");
    }
}
