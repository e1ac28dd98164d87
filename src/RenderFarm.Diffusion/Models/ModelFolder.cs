using System.Text.Json;
using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Models;

/// <summary>
/// A Stable Diffusion model in diffusers/Optimum's ONNX export layout. Opening checks that the files exist;
/// the sessions check the tensors when they load.
/// </summary>
public sealed class ModelFolder
{
    private ModelFolder(string root, string name, SchedulerConfig scheduler, float latentScalingFactor, ModelFamily family, bool forceZerosForEmptyPrompt)
    {
        Root = root;
        Name = name;
        Scheduler = scheduler;
        LatentScalingFactor = latentScalingFactor;
        Family = family;
        ForceZerosForEmptyPrompt = forceZerosForEmptyPrompt;
    }

    /// <summary>The layout the folder holds, detected from its files (see <see cref="ModelFamily"/>).</summary>
    public ModelFamily Family { get; }

    public bool IsXl => Family == ModelFamily.StableDiffusionXL;

    /// <summary>
    /// SDXL: an image without a negative prompt is guided away from zeros rather than from the encoded empty prompt,
    /// as diffusers' StableDiffusionXLPipeline does when its <c>force_zeros_for_empty_prompt</c> is true (its default,
    /// and SDXL base's model_index.json). Always false for SD 1.x/2.x.
    /// </summary>
    public bool ForceZerosForEmptyPrompt { get; }

    public string Root { get; }
    /// <summary>
    /// The folder's name: the identifier the farm addresses models by (API <c>model</c>, worker model cache, PNG
    /// <c>Model:</c>), so one model has one name everywhere.
    /// </summary>
    public string Name { get; }
    public SchedulerConfig Scheduler { get; }
    /// <summary>VAE latent scaling (0.18215 for SD 1.x/2.x, 0.13025 for SDXL); from <c>vae_decoder/config.json</c> when the export has one.</summary>
    public float LatentScalingFactor { get; }

    /// <summary>
    /// The side of the square images the model was trained at, used where a render names no size: 1024 for SDXL, 768
    /// for a v-prediction model (SD 2.x 768-v, whose export says <c>prediction_type: v_prediction</c>), 512 otherwise
    /// (SD 1.x and SD 2.x base, both ε-prediction). A model far from its training size repeats or crops its subject.
    /// </summary>
    public int DefaultImageSide => DefaultImageSideOf(Family, Scheduler.PredictionType);

    /// <summary>
    /// <see cref="DefaultImageSide"/> from what decides it, for a host that reads a model's files without opening the
    /// folder (the coordinator reads them from the model store).
    /// </summary>
    /// <param name="family">The layout (<see cref="IsXlLayout"/>).</param>
    /// <param name="predictionType">The scheduler config's <c>prediction_type</c>; null when the folder has none (ε).</param>
    public static int DefaultImageSideOf(ModelFamily family, string? predictionType) =>
        family == ModelFamily.StableDiffusionXL ? 1024 : predictionType == "v_prediction" ? 768 : 512;

    /// <summary>
    /// Whether files describe SDXL's layout: a second text encoder, or a <c>model_index.json</c> whose
    /// <c>_class_name</c> names an SDXL pipeline.
    /// </summary>
    public static bool IsXlLayout(bool hasSecondTextEncoder, string? pipelineClassName) =>
        hasSecondTextEncoder || (pipelineClassName ?? "").Contains("StableDiffusionXL", StringComparison.Ordinal);

    public string TextEncoderPath => Path.Combine(Root, "text_encoder", "model.onnx");
    public string UnetPath => Path.Combine(Root, "unet", "model.onnx");
    public string VaeDecoderPath => Path.Combine(Root, "vae_decoder", "model.onnx");
    public string VaeEncoderPath => Path.Combine(Root, "vae_encoder", "model.onnx");
    public string TokenizerDirectory => Path.Combine(Root, "tokenizer");
    /// <summary>SDXL's second text encoder (OpenCLIP bigG with projection); absent in SD 1.x/2.x folders.</summary>
    public string TextEncoder2Path => Path.Combine(Root, "text_encoder_2", "model.onnx");
    public string Tokenizer2Directory => Path.Combine(Root, "tokenizer_2");
    public bool HasVaeEncoder => File.Exists(VaeEncoderPath);

    private const string LayoutHint =
        "A model folder needs model_index.json, text_encoder/model.onnx, unet/model.onnx, vae_decoder/model.onnx and tokenizer/ " +
        "(diffusers/Optimum ONNX export layout; see models/README.md).";

    /// <summary>Opens <paramref name="directory"/> or throws <see cref="ModelFormatException"/> naming what is missing.</summary>
    public static ModelFolder Open(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var root = Path.GetFullPath(directory);
        if (!Directory.Exists(root))
        {
            throw new ModelFormatException($"Model folder '{root}' does not exist. {LayoutHint}");
        }

        string[] required =
        [
            "model_index.json",
            Path.Combine("text_encoder", "model.onnx"),
            Path.Combine("unet", "model.onnx"),
            Path.Combine("vae_decoder", "model.onnx"),
            Path.Combine("tokenizer", "vocab.json"),
            Path.Combine("tokenizer", "merges.txt"),
        ];
        var missing = required.Where(r => !File.Exists(Path.Combine(root, r))).ToList();
        if (missing.Count > 0)
        {
            throw new ModelFormatException($"Model folder '{root}' is missing {string.Join(", ", missing)}. {LayoutHint}");
        }

        var (family, forceZeros) = ReadFamily(root);
        return new ModelFolder(root, ReadName(root), ReadScheduler(root), ReadScalingFactor(root), family, forceZeros);
    }

    /// <summary>
    /// SDXL when the folder has a second text encoder or its model_index.json names an SDXL pipeline; then both
    /// encoders and tokenizers must be there. SDXL's refiner (text_encoder_2 only, no first encoder) is refused by
    /// the required-files check: it is an img2img second stage, not a model that renders from a prompt alone.
    /// </summary>
    private static (ModelFamily Family, bool ForceZeros) ReadFamily(string root)
    {
        using var index = ParseJson(Path.Combine(root, "model_index.json"));
        var className = index.RootElement.ValueKind == JsonValueKind.Object && index.RootElement.TryGetProperty("_class_name", out var c)
            && c.ValueKind == JsonValueKind.String ? c.GetString() ?? "" : "";
        if (!IsXlLayout(File.Exists(Path.Combine(root, "text_encoder_2", "model.onnx")), className))
        {
            return (ModelFamily.StableDiffusion, false);
        }

        string[] required =
        [
            Path.Combine("text_encoder_2", "model.onnx"),
            Path.Combine("tokenizer_2", "vocab.json"),
            Path.Combine("tokenizer_2", "merges.txt"),
        ];
        var missing = required.Where(r => !File.Exists(Path.Combine(root, r))).ToList();
        if (missing.Count > 0)
        {
            throw new ModelFormatException(
                $"Model folder '{root}' is an SDXL model (model_index.json says {className}) but is missing {string.Join(", ", missing)}. " +
                "SDXL needs text_encoder_2/model.onnx and tokenizer_2/ besides SD's files (see models/README.md).");
        }

        // diffusers' StableDiffusionXLPipeline registers force_zeros_for_empty_prompt=True unless the config says otherwise.
        var forceZeros = !(index.RootElement.TryGetProperty("force_zeros_for_empty_prompt", out var f) && f.ValueKind == JsonValueKind.False);
        return (ModelFamily.StableDiffusionXL, forceZeros);
    }

    private static string ReadName(string root) => Path.GetFileName(root.TrimEnd(Path.DirectorySeparatorChar));

    private static SchedulerConfig ReadScheduler(string root)
    {
        var path = Path.Combine(root, "scheduler", "scheduler_config.json");
        if (!File.Exists(path))
        {
            return SchedulerConfig.StableDiffusion1;
        }

        try
        {
            return JsonSerializer.Deserialize<SchedulerConfig>(File.ReadAllText(path)) ?? SchedulerConfig.StableDiffusion1;
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException($"'{path}' is not valid JSON: {ex.Message}. Restore it from the model's export.", ex);
        }
    }

    private static float ReadScalingFactor(string root)
    {
        const float StableDiffusionScaling = 0.18215f;
        var path = Path.Combine(root, "vae_decoder", "config.json");
        if (!File.Exists(path))
        {
            return StableDiffusionScaling;
        }

        using var doc = ParseJson(path);
        return doc.RootElement.TryGetProperty("scaling_factor", out var f) && f.TryGetSingle(out var value)
            ? value
            : StableDiffusionScaling;
    }

    private static JsonDocument ParseJson(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException($"'{path}' is not valid JSON: {ex.Message}. Restore it from the model's export.", ex);
        }
    }
}

/// <summary>The model layouts the engine renders.</summary>
public enum ModelFamily
{
    /// <summary>SD 1.x and 2.x: one CLIP/OpenCLIP text encoder whose last hidden state conditions the UNet.</summary>
    StableDiffusion,

    /// <summary>
    /// SDXL: two text encoders (their penultimate hidden states concatenated; the second's projected pooled output as
    /// <c>text_embeds</c>) and the UNet's size conditioning <c>time_ids</c>.
    /// </summary>
    StableDiffusionXL,
}
