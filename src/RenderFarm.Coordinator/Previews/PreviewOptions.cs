using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.Previews;

/// <summary>How many previews of running items the coordinator holds, bound from <c>Coordinator:Previews</c>.</summary>
public sealed class PreviewOptions
{
    public const string SectionName = "Coordinator:Previews";

    /// <summary>Running items with a preview held at once; at ~2–3 KiB each, 4096 cost about 10 MiB.</summary>
    public const int DefaultMaxItems = 4096;

    /// <summary>Largest preview accepted; workers send a few KiB, so anything near this is not a preview.</summary>
    public const int DefaultMaxBytes = 64 * 1024;

    /// <summary>A preview not replaced for this long belongs to an item whose worker went quiet; it is no longer shown.</summary>
    public static readonly TimeSpan DefaultMaxAge = TimeSpan.FromMinutes(2);

    public int MaxItems { get; set; } = DefaultMaxItems;

    public int MaxBytes { get; set; } = DefaultMaxBytes;

    public TimeSpan MaxAge { get; set; } = DefaultMaxAge;
}

internal sealed class PreviewOptionsValidator : IValidateOptions<PreviewOptions>
{
    public ValidateOptionsResult Validate(string? name, PreviewOptions options)
    {
        var failures = new List<string>();
        if (options.MaxItems < 1)
        {
            failures.Add($"{PreviewOptions.SectionName}:MaxItems must be at least 1.");
        }

        if (options.MaxBytes < 1)
        {
            failures.Add($"{PreviewOptions.SectionName}:MaxBytes must be at least 1.");
        }

        if (options.MaxAge <= TimeSpan.Zero)
        {
            failures.Add($"{PreviewOptions.SectionName}:MaxAge must be positive.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
