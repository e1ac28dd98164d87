using System.Text.Json;

namespace RenderFarm.Coordinator.Automatic1111;

// The request bodies of A1111's /sdapi/v1/txt2img and /img2img, as its clients send them (snake_case on the wire).
// Only the fields the farm acts on or checks are declared; every other field is accepted and ignored, as A1111's
// pydantic models ignore extras. Null means "left out": the A1111 default applies (Automatic1111Defaults).

/// <summary>The fields txt2img and img2img share.</summary>
public abstract record GenerationBody
{
    public string? Prompt { get; init; }
    public string? NegativePrompt { get; init; }
    public IReadOnlyList<string>? Styles { get; init; }

    /// <summary>-1 (or left out) draws a random seed; image i of the request uses seed + i.</summary>
    public long? Seed { get; init; }

    public long? Subseed { get; init; }
    public double? SubseedStrength { get; init; }
    public string? SamplerName { get; init; }

    /// <summary>A1111's older name for <see cref="SamplerName"/>; used when that is left out.</summary>
    public string? SamplerIndex { get; init; }

    /// <summary>A1111 1.9+ sends the noise schedule separately ("Automatic", "Karras").</summary>
    public string? Scheduler { get; init; }

    public int? BatchSize { get; init; }
    public int? NIter { get; init; }
    public int? Steps { get; init; }
    public double? CfgScale { get; init; }
    public int? Width { get; init; }
    public int? Height { get; init; }
    public double? DenoisingStrength { get; init; }
    public bool? RestoreFaces { get; init; }
    public bool? Tiling { get; init; }
    public Dictionary<string, JsonElement>? OverrideSettings { get; init; }
    public bool? SendImages { get; init; }
    public bool? SaveImages { get; init; }
    public string? ScriptName { get; init; }
    public Dictionary<string, JsonElement>? AlwaysonScripts { get; init; }
    public string? RefinerCheckpoint { get; init; }
}

/// <summary>The body of <c>POST /sdapi/v1/txt2img</c>.</summary>
public sealed record Txt2ImgBody : GenerationBody
{
    public bool? EnableHr { get; init; }
    public double? HrScale { get; init; }
    public string? HrUpscaler { get; init; }
    public int? HrSecondPassSteps { get; init; }
    public int? HrResizeX { get; init; }
    public int? HrResizeY { get; init; }
    public string? HrCheckpointName { get; init; }
    public string? HrSamplerName { get; init; }
    public string? HrPrompt { get; init; }
    public string? HrNegativePrompt { get; init; }
}

/// <summary>The body of <c>POST /sdapi/v1/img2img</c>.</summary>
public sealed record Img2ImgBody : GenerationBody
{
    /// <summary>Base64 images, each optionally a data URL (<c>data:image/png;base64,…</c>); PNG, JPEG or WebP.</summary>
    public IReadOnlyList<string>? InitImages { get; init; }

    /// <summary>Base64 mask (white = repaint), optionally a data URL; its presence makes the call an inpaint.</summary>
    public string? Mask { get; init; }

    /// <summary>1 repaints the black part of the mask instead of the white.</summary>
    public int? InpaintingMaskInvert { get; init; }

    public int? ResizeMode { get; init; }
    public int? MaskBlur { get; init; }
    public int? InpaintingFill { get; init; }
    public bool? InpaintFullRes { get; init; }
}

/// <summary>The body of <c>POST /sdapi/v1/png-info</c>.</summary>
public sealed record PngInfoBody(string? Image = null);

/// <summary>A1111's defaults for fields a client leaves out (its processing classes' and API models' defaults).</summary>
internal static class Automatic1111Defaults
{
    public const int Steps = 50;
    public const double CfgScale = 7.0;
    public const int Width = 512;
    public const int Height = 512;
    public const int BatchSize = 1;
    public const int NIter = 1;

    /// <summary>A1111's <c>sampler_index</c> default, used when neither sampler field is sent.</summary>
    public const string Sampler = "Euler";

    /// <summary>Both txt2img (for the hires pass) and img2img default to 0.75.</summary>
    public const double DenoisingStrength = 0.75;

    public const double HrScale = 2.0;

    public const long RandomSeed = -1;
}
