using RenderFarm.Domain.Requests;

namespace RenderFarm.Domain.Tiling;

/// <summary>
/// What each tile of a hires job renders with, derived from the job alone, so a tile re-run after a lost worker is the
/// same tile and the whole image is reproducible from the job's parameters.
/// </summary>
public static class TileDerivation
{
    /// <summary>
    /// The seed of tile <paramref name="tileIndex"/>: SplitMix64 of the job seed, stepped by the tile index, masked to
    /// <see cref="ValidationLimits.MaxSeed"/> so a tile's seed is itself a valid job seed (a user can re-render one tile
    /// as an img2img job).
    /// </summary>
    /// <remarks>
    /// Not <c>jobSeed + index</c>: neighbouring tiles would then start from seeds that other jobs use for their own items,
    /// and seed-sweeps of a hires job would share tiles. SplitMix64 is a fixed, documented bijective mixer, so the mapping
    /// never changes between runs, machines or .NET versions.
    /// </remarks>
    public static long Seed(long jobSeed, int tileIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tileIndex);
        return (long)(SplitMix64(unchecked((ulong)jobSeed), (ulong)tileIndex + 1) & ValidationLimits.MaxSeed);
    }

    /// <summary>
    /// The prompt of a tile: the job's own prompt. Refinement at moderate strength keeps each tile's content from the base
    /// image, and the prompt only steers texture, so the whole-image prompt is the right one for every tile; a per-tile
    /// caption would need a captioning model and would make tiles disagree in their overlaps.
    /// </summary>
    public static string Prompt(string jobPrompt, int tileIndex)
    {
        ArgumentNullException.ThrowIfNull(jobPrompt);
        ArgumentOutOfRangeException.ThrowIfNegative(tileIndex);
        return jobPrompt;
    }

    /// <summary>Vigna's SplitMix64: the <paramref name="step"/>-th output of the generator seeded with <paramref name="state"/>.</summary>
    public static ulong SplitMix64(ulong state, ulong step)
    {
        unchecked
        {
            var z = state + step * 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
