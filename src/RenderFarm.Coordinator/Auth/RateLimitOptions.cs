using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.Auth;

/// <summary>Requests per API key, bound from <c>Coordinator:Auth:RateLimit</c>: a token bucket per key.</summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "Coordinator:Auth:RateLimit";

    /// <summary>Requests a key may make at once before it must wait for the bucket to refill; 0 turns the limit off.</summary>
    public int Burst { get; set; } = 200;

    /// <summary>Requests added back to each key's bucket per <see cref="Period"/>.</summary>
    public int PerPeriod { get; set; } = 50;

    public TimeSpan Period { get; set; } = TimeSpan.FromSeconds(1);
}

internal sealed class RateLimitOptionsValidator : IValidateOptions<RateLimitOptions>
{
    public ValidateOptionsResult Validate(string? name, RateLimitOptions options)
    {
        var errors = new List<string>();
        if (options.Burst < 0)
        {
            errors.Add($"{RateLimitOptions.SectionName}:Burst must be 0 (off) or more, got {options.Burst}.");
        }

        if (options.Burst > 0 && options.PerPeriod < 1)
        {
            errors.Add($"{RateLimitOptions.SectionName}:PerPeriod must be 1 or more, got {options.PerPeriod}.");
        }

        if (options.Burst > 0 && options.Period <= TimeSpan.Zero)
        {
            errors.Add($"{RateLimitOptions.SectionName}:Period must be positive, got {options.Period}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
