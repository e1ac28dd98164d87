using System.Text.Json;
using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Models;

/// <summary>
/// A Stable Diffusion model in diffusers/Optimum's ONNX export layout. Opening checks that the files exist;
/// the sessions check the tensors when they load.
/// </summary>
public sealed class ModelFolder
{
    private ModelFolder(string root, string name, SchedulerConfig scheduler, float latentScalingFactor)
    {
        Root = root;
        Name = name;
        Scheduler = scheduler;
        LatentScalingFactor = latentScalingFactor;
    }

    public string Root { get; }
    /// <summary>
    /// The folder's name: the identifier the farm addresses models by (API <c>model</c>, worker model cache, PNG
    /// <c>Model:</c>), so one model has one name everywhere.
    /// </summary>
    public string Name { get; }
    public SchedulerConfig Scheduler { get; }
    /// <summary>VAE latent scaling (0.18215 for SD 1.x/2.x); from <c>vae_decoder/config.json</c> when the export has one.</summary>
    public float LatentScalingFactor { get; }

    /// <summary>
    /// The side of the square images the model was trained at, used where a render names no size: 768 for a
    /// v-prediction model (SD 2.x 768-v, whose export says <c>prediction_type: v_prediction</c>), 512 otherwise
    /// (SD 1.x and SD 2.x base, both ε-prediction). A model far from its training size repeats or crops its subject.
    /// </summary>
    public int DefaultImageSide => Scheduler.PredictionType == "v_prediction" ? 768 : 512;

    public string TextEncoderPath => Path.Combine(Root, "text_encoder", "model.onnx");
    public string UnetPath => Path.Combine(Root, "unet", "model.onnx");
    public string VaeDecoderPath => Path.Combine(Root, "vae_decoder", "model.onnx");
    public string VaeEncoderPath => Path.Combine(Root, "vae_encoder", "model.onnx");
    public string TokenizerDirectory => Path.Combine(Root, "tokenizer");
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

        return new ModelFolder(root, ReadName(root), ReadScheduler(root), ReadScalingFactor(root));
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
