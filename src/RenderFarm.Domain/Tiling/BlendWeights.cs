namespace RenderFarm.Domain.Tiling;

/// <summary>
/// Blend weights for overlapping tiles: along each axis every span gets a profile that is 1 inside and falls off with a
/// raised cosine across the pixels it shares with its neighbour, and the profiles are normalised so that at every pixel
/// the weights of the spans covering it sum to 1. A tile's 2-D weight is its column profile times its row profile; since
/// both axes are partitions of unity, so is their product over the whole grid.
/// </summary>
/// <remarks>
/// Where exactly two spans overlap by the ramp length (the regular case) the two cosines are complementary, so the
/// normalisation changes nothing and the blend is a pure cosine cross-fade, smooth to the first derivative. Where a grid
/// squeezed its tiles so that three overlap (a short image axis), normalising keeps the sum at 1 all the same.
/// </remarks>
public static class BlendWeights
{
    /// <summary>
    /// One profile per span, each <c>span.Length</c> long, for spans that cover <c>[0, total)</c> in increasing order of start.
    /// </summary>
    /// <exception cref="ArgumentException">The spans leave a pixel uncovered or are not in order.</exception>
    public static float[][] Profiles(IReadOnlyList<TileSpan> spans, int total)
    {
        ArgumentNullException.ThrowIfNull(spans);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(total);
        if (spans.Count == 0 || spans[0].Start != 0 || spans[^1].End != total)
        {
            throw new ArgumentException($"Spans must start at 0 and end at {total}.", nameof(spans));
        }

        var raw = new double[spans.Count][];
        var sum = new double[total];
        for (var i = 0; i < spans.Count; i++)
        {
            var span = spans[i];
            if (i > 0 && (span.Start < spans[i - 1].Start || span.Start > spans[i - 1].End))
            {
                throw new ArgumentException($"Span {i} ({span.Start}+{span.Length}) leaves a gap after span {i - 1} or is out of order.", nameof(spans));
            }

            // The ramp on each side is exactly as long as the overlap with the neighbour on that side, so a tile's own
            // pixels beyond the overlap keep full weight and the cross-fade uses the whole shared strip.
            var rampBefore = i > 0 ? spans[i - 1].End - span.Start : 0;
            var rampAfter = i < spans.Count - 1 ? span.End - spans[i + 1].Start : 0;
            var profile = new double[span.Length];
            for (var p = 0; p < span.Length; p++)
            {
                var w = Ramp(p, rampBefore) * Ramp(span.Length - 1 - p, rampAfter);
                profile[p] = w;
                sum[span.Start + p] += w;
            }

            raw[i] = profile;
        }

        var result = new float[spans.Count][];
        for (var i = 0; i < spans.Count; i++)
        {
            var start = spans[i].Start;
            result[i] = raw[i].Select((w, p) => (float)(w / sum[start + p])).ToArray();
        }

        return result;
    }

    /// <summary>
    /// Raised cosine over <paramref name="length"/> pixels, sampled at pixel centres so the outermost pixel still has a
    /// small positive weight (every covered pixel keeps a non-zero total) and two complementary ramps sum to exactly 1.
    /// </summary>
    private static double Ramp(int distanceFromEdge, int length) =>
        length <= 0 || distanceFromEdge >= length
            ? 1.0
            : (1 - Math.Cos(Math.PI * (distanceFromEdge + 0.5) / length)) / 2;
}
