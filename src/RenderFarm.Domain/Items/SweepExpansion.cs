using RenderFarm.Contracts;
using RenderFarm.Domain.Requests;

namespace RenderFarm.Domain.Items;

/// <summary>
/// The items a job expands into, addressed by index without materialising them: a mixed-radix view over the
/// cross product of the sweep axes. A million-item job costs its axes' memory, and any item can be computed
/// on its own, so the coordinator can write items in pages and a worker can recompute one from its index.
/// </summary>
/// <remarks>
/// Axis order, slowest-varying first: sizes, samplers, steps, guidance scales, strengths, negative prompts, prompts,
/// seeds, then the <c>count</c> repeats (an axis not given counts as one value, so adding the sizes, strengths and
/// negative prompts axes moved no item of an existing job). Batch-breaking settings vary slowest so consecutive
/// items share model, size, sampler, steps, guidance and strength and <see cref="WorkUnitPlanner"/> fills whole units.
/// Seeds: item i uses <c>baseSeed + i</c>, unless the sweep lists seeds, in which case the item takes its
/// entry from that axis. The order is part of the job's meaning (item 7 must stay item 7 across restarts),
/// so it never changes for existing jobs.
/// </remarks>
public sealed class SweepExpansion
{
    private readonly JobRequest _request;
    private readonly string[] _prompts;
    private readonly string[] _negativePrompts;
    private readonly long[]? _seeds;
    private readonly double[] _guidanceScales;
    private readonly int[] _steps;
    private readonly string[] _samplers;
    private readonly int _repeats;
    private readonly string _mode;
    private readonly double?[] _strengths;
    private readonly ImageSize[] _sizes;

    private SweepExpansion(JobRequest request, long baseSeed, string model)
    {
        _request = request;
        BaseSeed = baseSeed;
        Model = model;
        var sweep = request.Sweep;
        _prompts = [.. sweep?.Prompts ?? [request.Prompt]];
        _negativePrompts = [.. sweep?.NegativePrompts ?? [request.NegativePrompt ?? string.Empty]];
        _seeds = sweep?.Seeds is { } seeds ? [.. seeds] : null;
        _guidanceScales = [.. sweep?.GuidanceScales ?? [request.GuidanceScale]];
        _steps = [.. sweep?.Steps ?? [request.Steps]];
        _samplers = [.. sweep?.Samplers ?? [request.Sampler]];
        _sizes = [.. sweep?.Sizes ?? [new ImageSize(request.Width, request.Height)]];
        _repeats = request.Count ?? GenerationDefaults.Count;
        _mode = request.Mode ?? GenerationDefaults.Mode;
        _strengths = _mode == RenderModes.Txt2Img
            ? [null]
            : sweep?.Strengths is { } strengths ? [.. strengths.Select(s => (double?)s)] : [request.Strength ?? GenerationDefaults.Strength];
        Count = CountItems(request);
    }

    /// <summary>
    /// Expands a request that <see cref="JobRequestValidator"/> has passed.
    /// </summary>
    /// <param name="request">A request that passed validation.</param>
    /// <param name="seedIfUnset">Seed to use when the request names none; the host draws it, keeping the domain deterministic.</param>
    /// <param name="modelIfUnset">The host's default model, used when the request names none.</param>
    /// <exception cref="ArgumentException">The request expands into no items or too many to address, or its seeds leave the valid range (it was not validated).</exception>
    public static SweepExpansion For(JobRequest request, long seedIfUnset, string modelIfUnset)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIfUnset);
        var count = CountItems(request);
        if (count is <= 0 or long.MaxValue)
        {
            throw new ArgumentException("The request expands into no items or too many to address; validate it first.", nameof(request));
        }

        var baseSeed = request.Seed ?? seedIfUnset;
        if (request.Sweep?.Seeds is null && (baseSeed < 0 || baseSeed > MaxBaseSeed(count)))
        {
            throw new ArgumentOutOfRangeException(nameof(seedIfUnset), baseSeed,
                $"Item seeds would leave 0..{ValidationLimits.MaxSeed}; draw the seed from 0..{nameof(MaxBaseSeed)}(count).");
        }

        return new SweepExpansion(request, baseSeed, request.Model ?? modelIfUnset);
    }

    /// <summary>
    /// Largest base seed for a job of <paramref name="itemCount"/> items whose seeds follow the seed + i rule,
    /// so the last item's seed is still at most <see cref="ValidationLimits.MaxSeed"/>. Hosts draw random
    /// seeds from 0 to this value.
    /// </summary>
    public static long MaxBaseSeed(long itemCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(itemCount);
        return ValidationLimits.MaxSeed - (itemCount - 1);
    }

    /// <summary>
    /// Number of items a request expands into, by arithmetic over the axis lengths. Saturates at
    /// <see cref="long.MaxValue"/> instead of overflowing, so a hostile request is reported, not wrapped.
    /// Returns 0 when an axis is empty or count is below 1.
    /// </summary>
    public static long CountItems(JobRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var sweep = request.Sweep;
        long total = Math.Max(0, request.Count ?? GenerationDefaults.Count);
        foreach (var length in new[]
                 {
                     sweep?.Prompts?.Count, sweep?.Seeds?.Count, sweep?.GuidanceScales?.Count,
                     sweep?.Steps?.Count, sweep?.Samplers?.Count, sweep?.NegativePrompts?.Count, sweep?.Strengths?.Count,
                     sweep?.Sizes?.Count,
                 })
        {
            if (length is not { } n)
            {
                continue;
            }

            if (n == 0 || total == 0)
            {
                return 0;
            }

            total = total > long.MaxValue / n ? long.MaxValue : total * n;
        }

        return total;
    }

    /// <summary>Number of items in the job.</summary>
    public long Count { get; }

    /// <summary>Seed of item 0 (the request's or the host's), recorded on the job.</summary>
    public long BaseSeed { get; }

    /// <summary>Model every item uses.</summary>
    public string Model { get; }

    /// <summary>The item at <paramref name="index"/>; the same index always gives the same item.</summary>
    public ItemSpec At(long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);

        // Peel digits innermost-first; the order mirrors the remarks on the class.
        var rest = index / _repeats;
        long seedCount = _seeds?.Length ?? 1;
        var seedDigit = rest % seedCount;
        rest /= seedCount;
        var prompt = _prompts[rest % _prompts.Length];
        rest /= _prompts.Length;
        var negativePrompt = _negativePrompts[rest % _negativePrompts.Length];
        rest /= _negativePrompts.Length;
        var strength = _strengths[rest % _strengths.Length];
        rest /= _strengths.Length;
        var guidance = _guidanceScales[rest % _guidanceScales.Length];
        rest /= _guidanceScales.Length;
        var steps = _steps[rest % _steps.Length];
        rest /= _steps.Length;
        var sampler = _samplers[rest % _samplers.Length];
        rest /= _samplers.Length;
        var size = _sizes[rest];

        var seed = _seeds is null ? BaseSeed + index : _seeds[seedDigit];
        return new ItemSpec(
            index, seed, prompt, negativePrompt,
            size.Width, size.Height, steps, guidance, sampler, Model,
            _mode, strength, _request.InitImage, _request.Mask);
    }

    /// <summary>Items from <paramref name="start"/> on, computed one at a time as the caller reads.</summary>
    public IEnumerable<ItemSpec> Items(long start = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        for (var i = start; i < Count; i++)
        {
            yield return At(i);
        }
    }

    /// <summary>
    /// Items in consecutive pages of at most <paramref name="pageSize"/>, for writing a large job in bounded
    /// transactions; only one page is in memory at a time.
    /// </summary>
    public IEnumerable<IReadOnlyList<ItemSpec>> Pages(int pageSize, long start = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize);
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        for (var first = start; first < Count; first += pageSize)
        {
            var size = (int)Math.Min(pageSize, Count - first);
            var page = new ItemSpec[size];
            for (var k = 0; k < size; k++)
            {
                page[k] = At(first + k);
            }

            yield return page;
        }
    }
}
