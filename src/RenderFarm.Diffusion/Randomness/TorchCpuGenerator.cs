namespace RenderFarm.Diffusion.Randomness;

/// <summary>
/// PyTorch's CPU random generator (<c>torch.Generator('cpu').manual_seed(seed)</c>) and its standard-normal fill, so
/// that a seed gives the same starting latent here as in diffusers, ComfyUI or AUTOMATIC1111 with CPU noise.
/// </summary>
/// <remarks>
/// Follows ATen: <c>MT19937RNGEngine.h</c> (the engine), <c>DistributionsHelper.h</c> and
/// <c>TransformationHelper.h</c> (uniform and scalar normal draws) and <c>cpu/DistributionTemplates.h</c>
/// (<c>normal_fill_AVX2</c>, used for float tensors of 16 or more elements on x86-64, which is what the reference
/// draws and most GPU hosts run; torch's portable <c>normal_fill</c>, e.g. on ARM, uses libm and can differ from it by
/// an ulp). Draws advance the state exactly as torch does, so successive <see cref="FillNormal"/> calls match
/// successive <c>torch.randn</c> calls on one generator, bit for bit.
/// Not thread-safe: a generator is one stream of draws, as in torch.
/// </remarks>
public sealed class TorchCpuGenerator
{
    private const int StateSize = 624;
    private const int Middle = 397;
    private const uint MatrixA = 0x9908B0DF;
    private const uint UpperMask = 0x80000000;
    private const uint LowerMask = 0x7FFFFFFF;

    // normal_fill switches from the scalar Box-Muller to its block-of-16 form at this size.
    private const int BlockSize = 16;
    private const int HalfBlock = BlockSize / 2;
    private const float TwoPi = (float)(2.0 * Math.PI);

    private readonly uint[] _state = new uint[StateSize];
    private int _next;

    // Box-Muller yields two normals; the scalar path returns one and keeps the other for the next scalar draw, as
    // CPUGeneratorImpl's next_double_normal_sample does. The block path neither reads nor clears it.
    private double? _cachedNormal;

    /// <summary>Seeds like <c>torch.Generator('cpu').manual_seed(seed)</c>.</summary>
    /// <param name="seed">The seed; as in torch, the engine is initialised from its low 32 bits.</param>
    public TorchCpuGenerator(ulong seed)
    {
        // Knuth's initialisation from the Mersenne Twister reference (MT19937RNGEngine::init_with_uint32).
        _state[0] = unchecked((uint)seed);
        for (var i = 1; i < StateSize; i++)
        {
            var previous = _state[i - 1];
            _state[i] = unchecked((1812433253u * (previous ^ (previous >> 30))) + (uint)i);
        }

        _next = StateSize;
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with standard normal samples, exactly as
    /// <c>torch.randn(destination.Length, generator=g, dtype=torch.float32)</c> would (C-order, so any shape with the
    /// same element count gives the same values).
    /// </summary>
    public void FillNormal(Span<float> destination)
    {
        if (destination.Length >= BlockSize)
        {
            FillNormalBlocks(destination);
            return;
        }

        // Small tensors take TensorIterator's serial kernel: at::normal_distribution<double>, cast to float.
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = (float)NextNormalDouble();
        }
    }

    /// <summary>
    /// normal_fill: every element first receives a uniform float; then each block of 16 turns its 8 + 8 uniforms into
    /// 16 normals by Box-Muller. When the length is not a multiple of 16, the last 16 elements are redrawn as fresh
    /// uniforms and transformed again, overwriting the tail of the last whole block.
    /// </summary>
    private void FillNormalBlocks(Span<float> data)
    {
        // The tensor itself is the uniform buffer, as in torch, so no allocation is needed at any size.
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = NextUniformFloat();
        }

        for (var start = 0; start + BlockSize <= data.Length; start += BlockSize)
        {
            BoxMullerBlock(data.Slice(start, BlockSize));
        }

        if (data.Length % BlockSize != 0)
        {
            var tail = data[^BlockSize..];
            for (var i = 0; i < BlockSize; i++)
            {
                tail[i] = NextUniformFloat();
            }

            BoxMullerBlock(tail);
        }
    }

    /// <summary>
    /// normal_fill_16_AVX2 for mean 0 and standard deviation 1: Box-Muller in single precision with 2*pi rounded to
    /// float, and avx_mathfun's logarithm and sine/cosine.
    /// </summary>
    private static void BoxMullerBlock(Span<float> block)
    {
        for (var j = 0; j < HalfBlock; j++)
        {
            // 1 - u maps [0, 1) to (0, 1] so the logarithm is finite.
            var u1 = 1f - block[j];
            var u2 = block[j + HalfBlock];
            var radius = MathF.Sqrt(-2f * AvxMathFunctions.Log(u1));
            var (sin, cos) = AvxMathFunctions.SinCos(TwoPi * u2);
            block[j] = radius * cos;
            block[j + HalfBlock] = radius * sin;
        }
    }

    /// <summary>at::normal_distribution&lt;double&gt; with mean 0 and standard deviation 1.</summary>
    private double NextNormalDouble()
    {
        if (_cachedNormal is { } cached)
        {
            _cachedNormal = null;
            return cached;
        }

        var u1 = NextUniformDouble();
        var u2 = NextUniformDouble();
        // torch uses log1p(-u2); 1 - u2 is exact for a multiple of 2^-53 below 1, so Log(1 - u2) is the same value.
        var radius = Math.Sqrt(-2.0 * Math.Log(1.0 - u2));
        var theta = 2.0 * Math.PI * u1;
        _cachedNormal = radius * Math.Sin(theta);
        return radius * Math.Cos(theta);
    }

    /// <summary>uniform_real_distribution&lt;float&gt;(0, 1): the low 24 bits of one 32-bit draw, times 2^-24.</summary>
    private float NextUniformFloat() => (NextUInt32() & 0xFFFFFF) * (1f / (1 << 24));

    /// <summary>uniform_real_distribution&lt;double&gt;(0, 1): the low 53 bits of one 64-bit draw, times 2^-53.</summary>
    private double NextUniformDouble() => (NextUInt64() & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));

    /// <summary>CPUGeneratorImpl::random64: two 32-bit draws, the first one high.</summary>
    private ulong NextUInt64()
    {
        var high = NextUInt32();
        var low = NextUInt32();
        return ((ulong)high << 32) | low;
    }

    private uint NextUInt32()
    {
        if (_next >= StateSize)
        {
            Twist();
        }

        var y = _state[_next++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C5680;
        y ^= (y << 15) & 0xEFC60000;
        y ^= y >> 18;
        return y;
    }

    private void Twist()
    {
        for (var i = 0; i < StateSize; i++)
        {
            var mixed = (_state[i] & UpperMask) | (_state[(i + 1) % StateSize] & LowerMask);
            var twisted = (mixed >> 1) ^ ((mixed & 1) != 0 ? MatrixA : 0);
            _state[i] = _state[(i + Middle) % StateSize] ^ twisted;
        }

        _next = 0;
    }
}
