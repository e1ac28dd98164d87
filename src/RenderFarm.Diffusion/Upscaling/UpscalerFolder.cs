using System.Text.Json;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;

namespace RenderFarm.Diffusion.Upscaling;

/// <summary>
/// A super-resolution model folder: an ONNX model with Real-ESRGAN's interface (one float image input [1, 3, H, W]
/// in [0, 1], one output [1, 3, s·H, s·W], dynamic H and W) and <see cref="ConfigFile"/>, which records the scale
/// <c>s</c>, the model file, and optionally the model's <see cref="UpscalerMemoryProfile"/> under <c>memory</c>.
/// </summary>
public sealed class UpscalerFolder
{
    public const string ConfigFile = "renderfarm-upscaler.json";
    public const string DefaultModelFile = "model.onnx";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private UpscalerFolder(string path, int scale, string modelPath, UpscalerMemoryProfile? memory)
    {
        Path = path;
        Scale = scale;
        ModelPath = modelPath;
        Memory = memory;
    }

    public string Path { get; }
    /// <summary>The folder's name, which images record as the upscaler they used.</summary>
    public string Name => System.IO.Path.GetFileName(Path);
    public int Scale { get; }
    public string ModelPath { get; }
    public UpscalerMemoryProfile? Memory { get; }

    /// <summary>True when <paramref name="directory"/> has an upscaler config (so it is an upscaler folder, not a pipeline).</summary>
    public static bool IsUpscaler(string directory) => File.Exists(System.IO.Path.Combine(directory, ConfigFile));

    /// <exception cref="ModelFormatException">The folder or its config is missing or invalid.</exception>
    public static UpscalerFolder Open(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var path = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(directory));
        var configPath = System.IO.Path.Combine(path, ConfigFile);
        if (!File.Exists(configPath))
        {
            throw new ModelFormatException($"'{path}' is not an upscaler folder: it has no {ConfigFile} (which records the model's scale).");
        }

        Config config;
        try
        {
            config = JsonSerializer.Deserialize<Config>(File.ReadAllText(configPath), Json)
                ?? throw new ModelFormatException($"'{configPath}' is empty.");
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException($"'{configPath}' is not an upscaler config: {ex.Message}", ex);
        }

        if (config.Scale is not (>= 2 and <= 8))
        {
            throw new ModelFormatException($"'{configPath}' must give the model's scale as an integer from 2 to 8 (got {config.Scale?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}).");
        }

        var model = System.IO.Path.GetFullPath(System.IO.Path.Combine(path, config.Model ?? DefaultModelFile));
        if (!model.StartsWith(path + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(model))
        {
            throw new ModelFormatException($"'{configPath}' names the model '{config.Model ?? DefaultModelFile}', which is not a file inside the folder.");
        }

        return new UpscalerFolder(path, config.Scale.Value, model, config.Memory);
    }

    private sealed record Config(int? Scale, string? Model, UpscalerMemoryProfile? Memory);
}
