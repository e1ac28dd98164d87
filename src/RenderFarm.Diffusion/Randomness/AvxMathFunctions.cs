namespace RenderFarm.Diffusion.Randomness;

/// <summary>
/// Single-precision logarithm and sine/cosine as torch's AVX2 normal fill computes them (ATen's
/// <c>cpu/avx_mathfun.h</c>, Cephes polynomials by way of Julien Pommier's sse_mathfun), one lane at a time.
/// </summary>
/// <remarks>
/// The reference noise comes from torch's AVX2 kernel, which is what x86-64 builds run. These approximations differ
/// from the C library's <c>logf</c>/<c>sinf</c>/<c>cosf</c> by an ulp or two, so the same polynomials, evaluated in the
/// same order, are what make the noise bit-identical. GCC builds that code with <c>-mfma</c> and contracts each
/// multiply-then-add into one fused multiply-add; <see cref="MathF.FusedMultiplyAdd"/> reproduces that rounding.
/// Only arguments in the ranges the normal fill uses are supported: <c>Log</c> for (0, 1], <c>SinCos</c> for
/// [0, 2*pi).
/// </remarks>
internal static class AvxMathFunctions
{
    private const float SmallestNormal = 1.17549435E-38f;
    private const float SqrtHalf = 0.707106781186547524f;
    private const float LogP0 = 7.0376836292E-2f;
    private const float LogP1 = -1.1514610310E-1f;
    private const float LogP2 = 1.1676998740E-1f;
    private const float LogP3 = -1.2420140846E-1f;
    private const float LogP4 = 1.4249322787E-1f;
    private const float LogP5 = -1.6668057665E-1f;
    private const float LogP6 = 2.0000714765E-1f;
    private const float LogP7 = -2.4999993993E-1f;
    private const float LogP8 = 3.3333331174E-1f;
    private const float LogQ1 = -2.12194440e-4f;
    private const float LogQ2 = 0.693359375f;

    private const float FourOverPi = 1.27323954473516f;
    private const float MinusDp1 = -0.78515625f;
    private const float MinusDp2 = -2.4187564849853515625e-4f;
    private const float MinusDp3 = -3.77489497744594108e-8f;
    private const float SinP0 = -1.9515295891E-4f;
    private const float SinP1 = 8.3321608736E-3f;
    private const float SinP2 = -1.6666654611E-1f;
    private const float CosP0 = 2.443315711809948E-005f;
    private const float CosP1 = -1.388731625493765E-003f;
    private const float CosP2 = 4.166664568298827E-002f;

    /// <summary>Natural logarithm of <paramref name="x"/> in (0, 1].</summary>
    public static float Log(float x)
    {
        // Split x into a mantissa m in [0.5, 1) and an exponent e, then fold m below sqrt(1/2) so that the polynomial
        // argument m - 1 stays within [sqrt(1/2) - 1, sqrt(2) - 1].
        var bits = BitConverter.SingleToInt32Bits(MathF.Max(x, SmallestNormal));
        var exponent = (float)((int)((uint)bits >> 23) - 0x7F) + 1f;
        var mantissa = BitConverter.Int32BitsToSingle((bits & ~0x7F800000) | BitConverter.SingleToInt32Bits(0.5f));

        var below = mantissa < SqrtHalf;
        var m = mantissa - 1f;
        if (below)
        {
            exponent -= 1f;
            m += mantissa;
        }

        var z = m * m;
        var y = MathF.FusedMultiplyAdd(LogP0, m, LogP1);
        y = MathF.FusedMultiplyAdd(y, m, LogP2);
        y = MathF.FusedMultiplyAdd(y, m, LogP3);
        y = MathF.FusedMultiplyAdd(y, m, LogP4);
        y = MathF.FusedMultiplyAdd(y, m, LogP5);
        y = MathF.FusedMultiplyAdd(y, m, LogP6);
        y = MathF.FusedMultiplyAdd(y, m, LogP7);
        y = MathF.FusedMultiplyAdd(y, m, LogP8);
        y *= m;
        // GCC fuses the y * z product with the following add, so e * q1 is rounded on its own first.
        y = MathF.FusedMultiplyAdd(y, z, exponent * LogQ1);
        y = MathF.FusedMultiplyAdd(-z, 0.5f, y);
        return MathF.FusedMultiplyAdd(exponent, LogQ2, m + y);
    }

    /// <summary>Sine and cosine of <paramref name="x"/> in [0, 2*pi).</summary>
    public static (float Sin, float Cos) SinCos(float x)
    {
        // Octant j (rounded up to even), then x - j*pi/4 in three steps of extended-precision pi/4.
        var octant = (int)(x * FourOverPi);
        octant = (octant + 1) & ~1;
        var j = (float)octant;
        var r = MathF.FusedMultiplyAdd(j, MinusDp1, x);
        r = MathF.FusedMultiplyAdd(j, MinusDp2, r);
        r = MathF.FusedMultiplyAdd(j, MinusDp3, r);

        var z = r * r;
        var cosPolynomial = MathF.FusedMultiplyAdd(CosP0, z, CosP1);
        cosPolynomial = MathF.FusedMultiplyAdd(cosPolynomial, z, CosP2);
        cosPolynomial *= z;
        // As in Log: the second c * z is the product fused with the subtraction of z / 2.
        cosPolynomial = MathF.FusedMultiplyAdd(cosPolynomial, z, -(z * 0.5f));
        cosPolynomial += 1f;

        var sinPolynomial = MathF.FusedMultiplyAdd(SinP0, z, SinP1);
        sinPolynomial = MathF.FusedMultiplyAdd(sinPolynomial, z, SinP2);
        sinPolynomial *= z;
        sinPolynomial = MathF.FusedMultiplyAdd(sinPolynomial, r, r);

        // Octants 0 and 4 (mod 8) use the sine polynomial for sine; 2 and 6 swap the two.
        var swap = (octant & 2) != 0;
        var sin = swap ? cosPolynomial : sinPolynomial;
        var cos = swap ? sinPolynomial : cosPolynomial;
        if ((octant & 4) != 0)
        {
            sin = -sin;
        }

        if ((~(octant - 2) & 4) != 0)
        {
            cos = -cos;
        }

        return (sin, cos);
    }
}
