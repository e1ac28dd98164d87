using RenderFarm.Domain.Requests;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>
/// A1111's sampler names (and their aliases) for the farm's samplers. A1111 1.9+ sends the noise schedule apart
/// (<c>sampler_name: "DPM++ 2M", scheduler: "Karras"</c>); older clients send the combined name
/// (<c>"DPM++ 2M Karras"</c>). Both resolve to the same farm sampler.
/// </summary>
internal static class Automatic1111Samplers
{
    /// <summary>One A1111 sampler: its name, aliases, the farm sampler, and the farm sampler under a Karras schedule (null: none).</summary>
    internal sealed record Entry(string Name, IReadOnlyList<string> Aliases, string Farm, string? Karras);

    public const string AutomaticScheduler = "Automatic";

    public const string KarrasScheduler = "Karras";

    public static IReadOnlyList<Entry> All { get; } =
    [
        new("Euler a", ["k_euler_a", "k_euler_ancestral"], KnownSamplers.EulerAncestral, null),
        new("Euler", ["k_euler"], KnownSamplers.Euler, null),
        new("LMS", ["k_lms"], KnownSamplers.Lms, null),
        new("DDIM", ["ddim"], KnownSamplers.Ddim, null),
        new("PLMS", ["plms"], KnownSamplers.Plms, null),
        new("DPM++ 2M", ["k_dpmpp_2m"], KnownSamplers.DpmPlusPlus2M, KnownSamplers.DpmPlusPlus2MKarras),
        new("DPM++ 2M Karras", ["k_dpmpp_2m_ka"], KnownSamplers.DpmPlusPlus2MKarras, KnownSamplers.DpmPlusPlus2MKarras),
        new("LCM", ["k_lcm"], KnownSamplers.Lcm, null),
    ];

    /// <summary>
    /// The farm sampler for an A1111 sampler name (or alias, any case, as A1111 looks them up) and scheduler; null
    /// with <paramref name="problem"/> when the farm has no such sampler or schedule.
    /// </summary>
    public static string? Resolve(string name, string? scheduler, out string problem) => Resolve(name, scheduler, out _, out problem);

    /// <inheritdoc cref="Resolve(string, string?, out string)"/>
    /// <param name="name">A1111 sampler name or alias.</param>
    /// <param name="scheduler">A1111 scheduler, or null.</param>
    /// <param name="canonical">The A1111 sampler's own name (aliases and case resolved); empty when not found.</param>
    /// <param name="problem">Why nothing was found.</param>
    public static string? Resolve(string name, string? scheduler, out string canonical, out string problem)
    {
        var entry = All.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase)
            || e.Aliases.Contains(name, StringComparer.OrdinalIgnoreCase));
        canonical = entry?.Name ?? "";
        if (entry is null)
        {
            problem = $"Sampler not found: '{name}'. This farm serves: {string.Join(", ", All.Select(e => e.Name))}.";
            return null;
        }

        if (string.IsNullOrEmpty(scheduler) || string.Equals(scheduler, AutomaticScheduler, StringComparison.OrdinalIgnoreCase))
        {
            problem = "";
            return entry.Farm;
        }

        if (string.Equals(scheduler, KarrasScheduler, StringComparison.OrdinalIgnoreCase))
        {
            problem = entry.Karras is null ? $"Scheduler 'Karras' is not available with sampler '{entry.Name}' on this farm; only DPM++ 2M has a Karras schedule. Send scheduler \"Automatic\" or sampler \"DPM++ 2M\"." : "";
            return entry.Karras;
        }

        problem = $"Scheduler not found: '{scheduler}'. This farm serves \"{AutomaticScheduler}\" (each sampler's own schedule) and \"{KarrasScheduler}\" (with DPM++ 2M).";
        return null;
    }
}
