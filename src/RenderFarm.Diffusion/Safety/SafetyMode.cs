namespace RenderFarm.Diffusion.Safety;

/// <summary>What a render does with the safety checker's verdict, when the model folder has a checker.</summary>
public enum SafetyMode
{
    /// <summary>The checker is not run.</summary>
    Off,

    /// <summary>Every image is kept as rendered; the verdict is recorded on it (the default when a checker is present).</summary>
    Flag,

    /// <summary>A flagged image is blurred beyond recognition before it is kept; the verdict is recorded.</summary>
    Blur,

    /// <summary>A flagged image is not kept: callers store nothing for it (its pixels are replaced by black).</summary>
    Block,
}

/// <summary>The checker's verdict on one image and what was done about it.</summary>
/// <param name="Mode">The mode the render ran with.</param>
/// <param name="Flagged">The checker's <c>has_nsfw_concepts</c> for this image.</param>
public sealed record SafetyVerdict(SafetyMode Mode, bool Flagged)
{
    /// <summary>A flagged image under <see cref="SafetyMode.Block"/>: it must not be stored or shown.</summary>
    public bool Blocked => Flagged && Mode == SafetyMode.Block;

    /// <summary>
    /// The value written under <c>Safety checker:</c> in the PNG parameters: <c>passed</c>, or for a flagged image
    /// <c>flagged</c> (kept as rendered), <c>blurred</c> or <c>blocked</c>.
    /// </summary>
    public string Outcome => !Flagged ? "passed" : Mode switch
    {
        SafetyMode.Blur => "blurred",
        SafetyMode.Block => "blocked",
        _ => "flagged",
    };
}

/// <summary>The user-facing names of <see cref="SafetyMode"/> (CLI, API).</summary>
public static class SafetyModes
{
    public static IReadOnlyList<string> Names { get; } = ["off", "flag", "blur", "block"];

    public static bool TryParse(string? name, out SafetyMode mode)
    {
        mode = name?.ToLowerInvariant() switch
        {
            "off" => SafetyMode.Off,
            "flag" => SafetyMode.Flag,
            "blur" => SafetyMode.Blur,
            "block" => SafetyMode.Block,
            _ => (SafetyMode)(-1),
        };
        return Enum.IsDefined(mode);
    }

    public static string Name(SafetyMode mode) => Names[(int)mode];
}
