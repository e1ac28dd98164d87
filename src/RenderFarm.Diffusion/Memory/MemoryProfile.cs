using System.Text.Json;
using System.Text.Json.Serialization;

namespace RenderFarm.Diffusion.Memory;

/// <summary>
/// <c>c0 + rows·(c1·n + c2·n²)</c>: how a component's activation bytes (or seconds) grow with the rows of a call and
/// its tokens n (latent pixels for the UNet and the VAE, 1 for the text encoder, whose 77-token context is fixed).
/// The n² term is attention (UNet self-attention over every latent pixel; the VAE's mid-block attention).
/// </summary>
public sealed record Scaling(double Fixed, double PerToken, double PerTokenSquared)
{
    public static Scaling Zero { get; } = new(0, 0, 0);

    public double Evaluate(int rows, double tokens) => Fixed + rows * (PerToken * tokens + PerTokenSquared * tokens * tokens);
}

/// <summary>One ONNX component's memory and time: resident weights, activations and run time as <see cref="Scaling"/>s.</summary>
public sealed record ComponentProfile
{
    /// <summary>Bytes a loaded session holds before it runs (weights, plus the session's own overhead when measured).</summary>
    public required long WeightBytes { get; init; }
    public required Scaling ActivationBytes { get; init; }
    public required Scaling Seconds { get; init; }
    /// <summary>Seconds to create the session (paid once per render under sequential offload).</summary>
    public double LoadSeconds { get; init; }
}

/// <summary>One calibration measurement, kept in the profile so a reader can check the fit.</summary>
public sealed record CalibrationSample(string Component, int Rows, int LatentHeight, int LatentWidth, long WeightBytes, long ActivationBytes, double Seconds, double LoadSeconds);

/// <summary>
/// A model folder's memory model, stored beside the model as <see cref="FileName"/>. <see cref="Kind"/> is
/// <c>measured</c> (fitted by <see cref="MemoryCalibrator"/> from a calibration run on this machine) or
/// <c>predicted</c> (computed from the architecture, e.g. <see cref="StableDiffusion15"/>). Sizes are bytes of the
/// device the budget is about: process memory for <c>cpu</c>, GPU memory for <c>cuda</c>.
/// </summary>
public sealed record MemoryProfile
{
    public const string FileName = "renderfarm-memory.json";
    public const string Measured = "measured";
    public const string Predicted = "predicted";
    public const string CpuDevice = "cpu";
    public const string CudaDevice = "cuda";

    public required string Model { get; init; }
    public required string Kind { get; init; }
    public required string Device { get; init; }
    /// <summary>How the numbers were obtained, for the humans who read the file.</summary>
    public string Method { get; init; } = "";
    /// <summary>Memory of a render process before any session loads (runtime, ONNX Runtime, CUDA context on GPUs).</summary>
    public required long BaseBytes { get; init; }
    public required ComponentProfile TextEncoder { get; init; }
    public required ComponentProfile Unet { get; init; }
    public required ComponentProfile VaeDecoder { get; init; }
    public required ComponentProfile VaeEncoder { get; init; }
    /// <summary>How much slower the VAE runs on the CPU than on the device (1 on a CPU device).</summary>
    public double VaeCpuSlowdown { get; init; } = 1;
    public IReadOnlyList<CalibrationSample> Samples { get; init; } = [];

    [JsonIgnore]
    public bool IsCpu => Device == CpuDevice;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static string PathFor(string modelDirectory) => Path.Combine(modelDirectory, FileName);

    /// <summary>The profile stored beside the model, or null when it has not been calibrated.</summary>
    public static MemoryProfile? TryLoad(string modelDirectory)
    {
        var path = PathFor(modelDirectory);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<MemoryProfile>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"'{path}' is empty.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not a memory profile ({ex.Message}); delete it and run `renderfarm plan --calibrate`.", ex);
        }
    }

    /// <summary>Writes the profile beside the model (atomically, so a concurrent reader never sees half a file).</summary>
    public void Save(string modelDirectory)
    {
        var path = PathFor(modelDirectory);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(temp, ToJson());
        File.Move(temp, path, overwrite: true);
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static MemoryProfile FromJson(string json) =>
        JsonSerializer.Deserialize<MemoryProfile>(json, Json) ?? throw new InvalidDataException("Empty memory profile.");

    /// <summary>
    /// Stable Diffusion 1.5 on a CUDA GPU, computed from its components' known sizes and its architecture (marked
    /// <c>predicted</c>: no weights can be measured here). <paramref name="bytesPerElement"/> is 2 for the FP16 export
    /// the GPU worker uses, 4 for float32. Assumptions, each stated so a measurement can replace it:
    /// <list type="bullet">
    /// <item>Weights: UNet 860M, text encoder 123M, VAE decoder 49.5M, encoder 34.2M parameters.</item>
    /// <item>UNet activations per row: ~6 000 live elements per latent pixel at the first level (3 skip tensors of
    /// 320 channels kept for the up path, q/k/v and output of 320, the GEGLU's 2 560), and unfused attention — the
    /// stock export — holding scores and probabilities of 8 heads over h·w tokens at once: 2·8·(h·w)² elements.</item>
    /// <item>VAE decoder: ~40 000 elements per latent pixel (the 128-channel full-resolution ResNets, ×64 pixels per
    /// latent pixel, several tensors live) and its mid-block single-head attention over h·w tokens: 2·(h·w)². The
    /// encoder mirrors it.</item>
    /// <item>Base: CUDA context, cuBLAS/cuDNN handles and workspaces ≈ 600 MiB.</item>
    /// <item>Time, for an 8 GB Ampere-class card (RTX 3070): a UNet row at 64² latent takes 60 ms, 30 % of it
    /// attention; VAE decode at 512² 0.1 s; the VAE on the CPU is 30× slower; loading reads weights at ~1 GB/s.</item>
    /// </list>
    /// </summary>
    public static MemoryProfile StableDiffusion15(int bytesPerElement = 2)
    {
        double e = bytesPerElement;
        const double RefTokens = 64 * 64;
        const double UnetRowSeconds = 0.060;
        return new MemoryProfile
        {
            Model = bytesPerElement == 2 ? "stable-diffusion-v1-5 (fp16)" : "stable-diffusion-v1-5 (fp32)",
            Kind = Predicted,
            Device = CudaDevice,
            Method = "Computed from parameter counts and the architecture (see MemoryProfile.StableDiffusion15); not measured.",
            BaseBytes = 600L << 20,
            TextEncoder = new ComponentProfile
            {
                WeightBytes = (long)(123e6 * e),
                ActivationBytes = new Scaling(32 << 20, 77 * 768 * 24 * e, 0),
                Seconds = new Scaling(0.005, 0.003, 0),
                LoadSeconds = 123e6 * e / 1e9,
            },
            Unet = new ComponentProfile
            {
                WeightBytes = (long)(860e6 * e),
                ActivationBytes = new Scaling(256 << 20, 6000 * e, 2 * 8 * e),
                Seconds = new Scaling(0.004, UnetRowSeconds * 0.7 / RefTokens, UnetRowSeconds * 0.3 / (RefTokens * RefTokens)),
                LoadSeconds = 860e6 * e / 1e9,
            },
            VaeDecoder = new ComponentProfile
            {
                WeightBytes = (long)(49.5e6 * e),
                ActivationBytes = new Scaling(64 << 20, 40000 * e, 2 * e),
                Seconds = new Scaling(0.002, 0.1 / RefTokens, 0),
                LoadSeconds = 49.5e6 * e / 1e9,
            },
            VaeEncoder = new ComponentProfile
            {
                WeightBytes = (long)(34.2e6 * e),
                ActivationBytes = new Scaling(64 << 20, 40000 * e, 2 * e),
                Seconds = new Scaling(0.002, 0.08 / RefTokens, 0),
                LoadSeconds = 34.2e6 * e / 1e9,
            },
            VaeCpuSlowdown = 30,
        };
    }
}
