using System.Globalization;
using System.Text;

namespace RenderFarm.Diffusion.Imaging;

/// <summary>
/// The parameters an image was made with, in the text form AUTOMATIC1111 writes into a PNG's <c>parameters</c> chunk
/// and other SD tools (ComfyUI importers, civitai, InvokeAI) read back: the prompt, a <c>Negative prompt:</c> line, and a
/// line of <c>Key: value</c> pairs.
/// </summary>
public sealed record GenerationParameters
{
    public required string Prompt { get; init; }
    public string NegativePrompt { get; init; } = "";
    public required int Steps { get; init; }
    /// <summary>Our sampler name (e.g. <c>euler_a</c>); written under its display name (e.g. <c>Euler a</c>).</summary>
    public required string Sampler { get; init; }
    public required double GuidanceScale { get; init; }
    public required ulong Seed { get; init; }
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required string Model { get; init; }
    /// <summary>img2img/inpaint strength; null for txt2img.</summary>
    public double? DenoisingStrength { get; init; }
    /// <summary>The safety checker's outcome (<c>passed</c>, <c>flagged</c>, <c>blurred</c>); null when no checker ran.</summary>
    public string? SafetyChecker { get; init; }
    /// <summary>The invisible watermark's method (<c>dwtDct</c>) when one was embedded; null otherwise. The payload is not written here.</summary>
    public string? Watermark { get; init; }

    private static readonly (string Name, string Display)[] SamplerDisplayNames =
    [
        ("ddim", "DDIM"), ("plms", "PLMS"), ("euler", "Euler"), ("euler_a", "Euler a"), ("lms", "LMS"),
        ("dpmpp_2m", "DPM++ 2M"), ("dpmpp_2m_karras", "DPM++ 2M Karras"), ("lcm", "LCM"),
    ];

    public static string DisplayName(string sampler) =>
        SamplerDisplayNames.FirstOrDefault(s => s.Name == sampler).Display ?? sampler;

    public static string SamplerFromDisplayName(string display) =>
        SamplerDisplayNames.FirstOrDefault(s => string.Equals(s.Display, display, StringComparison.OrdinalIgnoreCase)).Name ?? display;

    public string Format()
    {
        var text = new StringBuilder(Prompt);
        if (NegativePrompt.Length > 0)
        {
            text.Append('\n').Append("Negative prompt: ").Append(NegativePrompt);
        }

        var c = CultureInfo.InvariantCulture;
        text.Append('\n')
            .Append(c, $"Steps: {Steps}, Sampler: {DisplayName(Sampler)}, CFG scale: {GuidanceScale.ToString("0.###", c)}, ")
            .Append(c, $"Seed: {Seed}, Size: {Width}x{Height}, Model: {Model}");
        if (DenoisingStrength is { } strength)
        {
            text.Append(c, $", Denoising strength: {strength.ToString("0.###", c)}");
        }

        if (SafetyChecker is { } outcome)
        {
            text.Append(", Safety checker: ").Append(outcome);
        }

        if (Watermark is { } watermark)
        {
            text.Append(", Watermark: ").Append(watermark);
        }

        return text.ToString();
    }

    /// <summary>Parses text in the form <see cref="Format"/> writes; throws <see cref="FormatException"/> when a required key is missing.</summary>
    public static GenerationParameters Parse(string text)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var settingsLine = lines[^1];
        var negative = new List<string>();
        var prompt = new List<string>();
        var inNegative = false;
        foreach (var line in lines[..^1])
        {
            if (line.StartsWith("Negative prompt: ", StringComparison.Ordinal))
            {
                inNegative = true;
                negative.Add(line["Negative prompt: ".Length..]);
            }
            else
            {
                (inNegative ? negative : prompt).Add(line);
            }
        }

        var pairs = settingsLine.Split(", ")
            .Select(p => p.Split(": ", 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        string Get(string key) => pairs.TryGetValue(key, out var v) ? v : throw new FormatException($"Parameters have no '{key}'.");
        var size = Get("Size").Split('x');
        var c = CultureInfo.InvariantCulture;
        return new GenerationParameters
        {
            Prompt = string.Join('\n', prompt),
            NegativePrompt = string.Join('\n', negative),
            Steps = int.Parse(Get("Steps"), c),
            Sampler = SamplerFromDisplayName(Get("Sampler")),
            GuidanceScale = double.Parse(Get("CFG scale"), c),
            Seed = ulong.Parse(Get("Seed"), c),
            Width = int.Parse(size[0], c),
            Height = int.Parse(size[1], c),
            Model = Get("Model"),
            DenoisingStrength = pairs.TryGetValue("Denoising strength", out var s) ? double.Parse(s, c) : null,
            SafetyChecker = pairs.GetValueOrDefault("Safety checker"),
            Watermark = pairs.GetValueOrDefault("Watermark"),
        };
    }
}
