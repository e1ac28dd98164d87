using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Watermarking;

/// <summary>
/// An invisible watermark in the form the Python <c>invisible-watermark</c> library calls <c>dwtDct</c> (the one
/// Stable Diffusion's reference script embeds), so that library's decoder reads our marks and ours reads theirs.
/// </summary>
/// <remarks>
/// The steps, as that library runs them with its default settings:
/// <list type="number">
/// <item>The image is converted to YUV with OpenCV's BT.601 <c>COLOR_BGR2YUV</c> coefficients; only U is marked
/// (the library's default scales are Y 0, U 36, and its loop never reaches V).</item>
/// <item>The largest top-left region with sides a multiple of 4 gets a one-level Haar DWT; only the approximation
/// band LL (each value the sum of a 2×2 pixel group divided by 2) carries the mark.</item>
/// <item>LL is cut into 4×4 blocks, row by row. Block <c>n</c> carries payload bit <c>n mod L</c>, bits taken most
/// significant first from each byte. In each block the coefficient of largest magnitude other than the first one
/// (row-major, first on ties) is set to <c>sign · (⌊|v| / 36⌋ + 0.25 + 0.5 · bit) · 36</c>. Despite the name, no DCT
/// is applied to the block: the library's default path quantises the DWT coefficients themselves.</item>
/// <item>Reading: the same coefficient of each block votes 1 when <c>|v| mod 36 &gt; 18</c>; a bit is 1 when its
/// mean vote × 255 exceeds 127, i.e. when at least half of its blocks vote 1. The payload length is not stored in
/// the image: their decoder is told it, ours finds it (see <see cref="Decode"/>).</item>
/// </list>
/// Written by hand rather than with a numerics package: one Haar level over the LL band is four products and three sums per 2×2 group,
/// and changing LL alone moves each of the group's pixels by half the change, so no transform library is needed.
/// Unlike the reference we keep the DWT detail bands exactly as they were (it swaps the horizontal and vertical bands
/// on reconstruction, which alters chroma detail but not LL, so decoding is unaffected) and we round rather than
/// truncate when going back to 8 bits; and we keep the marked coefficient the block's strongest (see <see cref="Embed"/>),
/// which the reference does not, so its decoder reads our marks more reliably than its own.
/// </remarks>
public static class DwtDctWatermark
{
    /// <summary>The method's name in the reference library, written under <c>Watermark:</c> in the PNG parameters.</summary>
    public const string MethodName = "dwtDct";

    /// <summary>The quantisation step of the U channel's marked coefficient (the library's default scale).</summary>
    public const double Scale = 36;

    /// <summary>The side of the square blocks of LL coefficients that each carry one payload bit.</summary>
    public const int BlockSize = 4;

    /// <summary>The reference encoder refuses images under 256×256 pixels (by area); so do we.</summary>
    public const int MinimumPixels = 256 * 256;

    /// <summary>The longest payload we embed: at the minimum size each bit still gets four blocks.</summary>
    public const int MaxPayloadBytes = 32;

    /// <summary>The bytes Stable Diffusion's reference script embeds.</summary>
    public static ReadOnlyMemory<byte> StableDiffusionPayload { get; } = "StableDiffusionV1"u8.ToArray();

    /// <summary>Why <paramref name="payload"/> cannot be embedded, or null when it can.</summary>
    public static string? PayloadProblem(ReadOnlySpan<byte> payload)
    {
        if (payload.Length == 0 || payload.Length > MaxPayloadBytes)
        {
            return $"a watermark payload must be 1 to {MaxPayloadBytes} bytes long (UTF-8), not {payload.Length}.";
        }

        // A payload whose bits repeat within a byte (only 0s, only 1s, 0x55…, 0x33…) reads like a flat or striped image,
        // which the detection rule must not take for a mark (see Decode).
        return HasSubBytePeriod(payload)
            ? "a watermark payload's bits must not repeat with a period shorter than a byte (e.g. only 0x00, 0xFF or 0x55 bytes)."
            : null;
    }

    /// <summary>Why an image of this size cannot carry a mark, or null when it can.</summary>
    public static string? SizeProblem(int width, int height) =>
        (long)width * height < MinimumPixels
            ? $"an image must have at least {MinimumPixels} pixels (256x256) to carry an invisible watermark; {width}x{height} has {(long)width * height}."
            : null;

    /// <summary>Returns a copy of <paramref name="image"/> carrying <paramref name="payload"/>.</summary>
    public static RgbImage Embed(RgbImage image, ReadOnlySpan<byte> payload)
    {
        if (PayloadProblem(payload) is { } payloadProblem)
        {
            throw new ArgumentException(payloadProblem, nameof(payload));
        }

        if (SizeProblem(image.Width, image.Height) is { } sizeProblem)
        {
            throw new ArgumentException(sizeProblem, nameof(image));
        }

        var bits = Bits(payload);
        var planes = YuvPlanes.From(image);
        var ll = LowBand(planes.U, image.Width, image.Height, out var llWidth, out var llHeight);
        var block = new double[BlockSize * BlockSize];
        var n = 0;
        for (var by = 0; by < llHeight / BlockSize; by++)
        {
            for (var bx = 0; bx < llWidth / BlockSize; bx++, n++)
            {
                CopyBlock(ll, llWidth, bx, by, block);
                var at = StrongestCoefficient(block);
                var value = block[at];
                var bit = bits[n % bits.Length];
                var magnitude = (Math.Floor(Math.Abs(value) / Scale) + 0.25 + 0.5 * bit) * Scale;

                // The reference quantises the strongest coefficient down by up to 27, after which another one is often
                // the strongest and the decoder reads that one instead (smooth images, where a block's coefficients
                // are alike, lose most bits this way). Moving up by whole steps keeps the same residue, so the bit is
                // unchanged for their decoder, and keeps the coefficient the one the decoder reads.
                var runnerUp = RunnerUp(block, at);
                while (magnitude < runnerUp + ArgmaxMargin)
                {
                    magnitude += Scale;
                }

                var marked = value < 0 ? -magnitude : magnitude;

                // Changing one LL coefficient by d, with the detail bands kept, moves each pixel of its 2×2 group by d/2.
                var x = bx * BlockSize + at % BlockSize;
                var y = by * BlockSize + at / BlockSize;
                var shift = (marked - value) / 2;
                for (var dy = 0; dy < 2; dy++)
                {
                    for (var dx = 0; dx < 2; dx++)
                    {
                        planes.U[(2 * y + dy) * image.Width + 2 * x + dx] += shift;
                    }
                }
            }
        }

        return planes.ToRgb();
    }

    /// <summary>
    /// For each payload bit, the fraction of its blocks that vote 1 when the payload is <paramref name="bitLength"/>
    /// bits long: the reference decoder's scores before its ≥ 128/255 threshold.
    /// </summary>
    public static double[] BitScores(RgbImage image, int bitLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bitLength);
        var votes = Votes(image);
        return ScoresFor(votes, bitLength);
    }

    /// <summary>The payload bits as the reference decoder reads them for a payload of <paramref name="byteLength"/> bytes.</summary>
    public static byte[] ReadBytes(RgbImage image, int byteLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(byteLength);
        return Pack(ScoresFor(Votes(image), byteLength * 8));
    }

    /// <summary>
    /// Finds a mark without being told its length. For every candidate length of 1 to <see cref="MaxPayloadBytes"/>
    /// bytes it measures how unanimously each bit's blocks vote (<see cref="Agreement"/>: 1 when every block of every
    /// bit agrees, near 0 for coin flips). A length is a candidate when its agreement is at least
    /// <see cref="DetectionThreshold"/>, the agreement one bit longer (which mixes a real payload's bits within every
    /// vote) is under half of it, and the bits read have no period that is not a whole number of bytes (a flat or
    /// striped image agrees with itself at every multiple of its period, a real payload is refused such a period by
    /// <see cref="PayloadProblem"/>). Multiples of a payload's length agree as well as the length itself, and a length
    /// that folds two halves of a payload onto each other agrees where their bits happen to match, so the answer is the
    /// shortest candidate within <see cref="LengthTolerance"/> of the best agreement. Null when there is no candidate.
    /// </summary>
    public static WatermarkReading? Decode(RgbImage image)
    {
        if (SizeProblem(image.Width, image.Height) is not null)
        {
            return null;
        }

        var votes = Votes(image);
        var candidates = new List<WatermarkReading>();
        for (var bytes = 1; bytes <= MaxPayloadBytes && votes.Length >= 2 * bytes * 8; bytes++)
        {
            var scores = ScoresFor(votes, bytes * 8);
            var agreement = Agreement(scores);
            var control = Agreement(ScoresFor(votes, bytes * 8 + 1));
            var payload = Pack(scores);
            if (agreement >= DetectionThreshold && control < agreement / 2 && !HasSubBytePeriod(payload))
            {
                candidates.Add(new WatermarkReading(payload, agreement, control));
            }
        }

        if (candidates.Count == 0)
        {
            return null;
        }

        var best = candidates.Max(c => c.Agreement);
        return candidates.First(c => c.Agreement >= best - LengthTolerance);
    }

    /// <summary>How much lower than the best a shorter length's agreement may be and still be chosen.</summary>
    public const double LengthTolerance = 0.05;

    /// <summary>True when the payload's bits repeat with a period that is not a multiple of 8 (all-0 and all-1 included).</summary>
    private static bool HasSubBytePeriod(ReadOnlySpan<byte> payload)
    {
        var bits = Bits(payload);
        for (var period = 1; period < bits.Length; period++)
        {
            if (period % 8 == 0 || bits.Length % period != 0)
            {
                continue;
            }

            var repeats = true;
            for (var i = period; i < bits.Length && repeats; i++)
            {
                repeats = bits[i] == bits[i - period];
            }

            if (repeats)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The least <see cref="Agreement"/> <see cref="Decode"/> takes for a mark.</summary>
    public const double DetectionThreshold = 0.5;


    /// <summary>The mean over bits of |2·score − 1|: how unanimously each bit's blocks vote.</summary>
    public static double Agreement(IReadOnlyList<double> scores) => scores.Average(s => Math.Abs(2 * s - 1));

    /// <summary>Each block's vote (0 or 1), blocks row by row over the U channel's LL band.</summary>
    private static byte[] Votes(RgbImage image)
    {
        var ll = LowBand(YuvPlanes.OpenCvU(image), image.Width, image.Height, out var llWidth, out var llHeight);
        var blocksX = llWidth / BlockSize;
        var blocksY = llHeight / BlockSize;
        var votes = new byte[blocksX * blocksY];
        var block = new double[BlockSize * BlockSize];
        for (var by = 0; by < blocksY; by++)
        {
            for (var bx = 0; bx < blocksX; bx++)
            {
                CopyBlock(ll, llWidth, bx, by, block);
                var value = Math.Abs(block[StrongestCoefficient(block)]);
                votes[by * blocksX + bx] = value % Scale > 0.5 * Scale ? (byte)1 : (byte)0;
            }
        }

        return votes;
    }

    private static double[] ScoresFor(byte[] votes, int bitLength)
    {
        var ones = new double[bitLength];
        var counts = new int[bitLength];
        for (var n = 0; n < votes.Length; n++)
        {
            ones[n % bitLength] += votes[n];
            counts[n % bitLength]++;
        }

        for (var i = 0; i < bitLength; i++)
        {
            ones[i] = counts[i] == 0 ? 0.5 : ones[i] / counts[i];
        }

        return ones;
    }

    // The reference's threshold: mean score · 255 > 127.
    private static byte[] Pack(double[] scores)
    {
        var bytes = new byte[scores.Length / 8];
        for (var i = 0; i < bytes.Length * 8; i++)
        {
            if (scores[i] * 255 > 127)
            {
                bytes[i / 8] |= (byte)(0x80 >> (i % 8));
            }
        }

        return bytes;
    }

    private static int[] Bits(ReadOnlySpan<byte> payload)
    {
        var bits = new int[payload.Length * 8];
        for (var i = 0; i < bits.Length; i++)
        {
            bits[i] = (payload[i / 8] >> (7 - i % 8)) & 1;
        }

        return bits;
    }

    /// <summary>The Haar LL band of the plane's top-left region whose sides are multiples of 4 (as the reference crops).</summary>
    /// <remarks>
    /// Computed in PyWavelets' order and floating-point arithmetic (pairs down each column first, then across, each
    /// a sum of products with the filter tap 1/√2), not as the exact sum / 2: coefficients land on multiples of 0.5,
    /// often exactly on the vote threshold 36k + 18 or tied for the largest, where the last bit of rounding decides
    /// the vote as it does for the reference decoder.
    /// </remarks>
    private static double[] LowBand(double[] plane, int width, int height, out int llWidth, out int llHeight)
    {
        const double tap = 0.7071067811865476;
        llWidth = width / 4 * 4 / 2;
        llHeight = height / 4 * 4 / 2;
        var ll = new double[llWidth * llHeight];
        for (var y = 0; y < llHeight; y++)
        {
            var top = 2 * y * width;
            var bottom = top + width;
            for (var x = 0; x < llWidth; x++)
            {
                var left = plane[top + 2 * x] * tap + plane[bottom + 2 * x] * tap;
                var right = plane[top + 2 * x + 1] * tap + plane[bottom + 2 * x + 1] * tap;
                ll[y * llWidth + x] = left * tap + right * tap;
            }
        }

        return ll;
    }

    private static void CopyBlock(double[] ll, int llWidth, int bx, int by, double[] block)
    {
        for (var r = 0; r < BlockSize; r++)
        {
            Array.Copy(ll, (by * BlockSize + r) * llWidth + bx * BlockSize, block, r * BlockSize, BlockSize);
        }
    }

    /// <summary>How far above every other candidate the marked coefficient is kept, so 8-bit rounding cannot reorder them.</summary>
    private const double ArgmaxMargin = 8;

    private static double RunnerUp(double[] block, int at)
    {
        var best = 0.0;
        for (var i = 1; i < block.Length; i++)
        {
            if (i != at)
            {
                best = Math.Max(best, Math.Abs(block[i]));
            }
        }

        return best;
    }

    /// <summary>The index of the largest |coefficient| after the first, the first such on ties (numpy's argmax).</summary>
    private static int StrongestCoefficient(double[] block)
    {
        var at = 1;
        for (var i = 2; i < block.Length; i++)
        {
            if (Math.Abs(block[i]) > Math.Abs(block[at]))
            {
                at = i;
            }
        }

        return at;
    }
}

/// <summary>A mark <see cref="DwtDctWatermark.Decode"/> found.</summary>
/// <param name="Payload">The payload bytes.</param>
/// <param name="Agreement">How unanimously the blocks voted at this length (1 = all).</param>
/// <param name="ControlAgreement">The same measure one bit longer, where a real mark's votes mix.</param>
public sealed record WatermarkReading(byte[] Payload, double Agreement, double ControlAgreement)
{
    /// <summary>The payload as text when it is UTF-8 without control characters, else <c>hex:</c> and its bytes.</summary>
    public string Text
    {
        get
        {
            try
            {
                var text = new System.Text.UTF8Encoding(false, true).GetString(Payload);
                if (!text.Any(char.IsControl))
                {
                    return text;
                }
            }
            catch (System.Text.DecoderFallbackException)
            {
            }

            return "hex:" + Convert.ToHexStringLower(Payload);
        }
    }
}
