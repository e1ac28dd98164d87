using RenderFarm.ModelGenerator.Oracle;

namespace RenderFarm.ModelGenerator;

/// <summary>
/// The oracle model's math in plain C#: what each generated ONNX graph computes, so engine tests can
/// predict exact outputs (the ONNX graphs are tested to agree with this to float32 rounding).
/// </summary>
public static class OracleReference
{
    /// <summary>Width of one text-encoder hidden row (D).</summary>
    public const int HiddenSize = OracleConstants.HiddenSize;

    /// <summary>Token positions per prompt.</summary>
    public const int SequenceLength = OracleConstants.SequenceLength;

    /// <summary>
    /// Text encoder: <c>h[k,d] = sin(ω_d·(id[k] − 513))</c>, 77×768 row-major; padding (id 513) rows are exactly zero.
    /// </summary>
    public static float[] TextHidden(ReadOnlySpan<int> ids)
    {
        if (ids.Length != SequenceLength)
        {
            throw new ArgumentException($"Expected {SequenceLength} token ids, got {ids.Length}.", nameof(ids));
        }

        var hidden = new float[SequenceLength * HiddenSize];
        var omega = OracleConstants.Omega;
        for (int k = 0; k < SequenceLength; k++)
        {
            // Same float32 operations as the graph: Cast → Sub → Mul → Sin.
            float x = ids[k] - (float)OracleConstants.EndOfText;
            for (int d = 0; d < HiddenSize; d++)
            {
                hidden[(k * HiddenSize) + d] = MathF.Sin(x * omega[d]);
            }
        }

        return hidden;
    }

    /// <summary>
    /// The latent the UNet denoises towards for one prompt: <c>μ[c] = A·tanh(s·Σ_k Σ_d W[c,d]·h[k,d])</c>
    /// (4 values, the same at every pixel), in the pipeline's scaled latent space.
    /// </summary>
    public static float[] TargetLatent(ReadOnlySpan<float> hidden)
    {
        if (hidden.Length != SequenceLength * HiddenSize)
        {
            throw new ArgumentException($"Expected {SequenceLength}×{HiddenSize} hidden values, got {hidden.Length}.", nameof(hidden));
        }

        var sum = new double[HiddenSize];
        for (int k = 0; k < SequenceLength; k++)
        {
            for (int d = 0; d < HiddenSize; d++)
            {
                sum[d] += hidden[(k * HiddenSize) + d];
            }
        }

        var target = new float[OracleConstants.LatentChannels];
        for (int c = 0; c < target.Length; c++)
        {
            double projection = 0;
            for (int d = 0; d < HiddenSize; d++)
            {
                projection += OracleConstants.TargetProjection[(c * HiddenSize) + d] * sum[d];
            }

            target[c] = (float)(OracleConstants.TargetAmplitude * Math.Tanh(OracleConstants.TargetSlope * projection));
        }

        return target;
    }

    /// <summary>
    /// ᾱ(t) of SD's scaled-linear schedule, with log σ linearly interpolated between integer timesteps
    /// (t clamped to [0, 999]) so fractional timesteps of Karras-style samplers are defined.
    /// </summary>
    public static float AlphaCumprod(double timestep) => (float)AlphaCumprodExact(timestep);

    /// <summary>
    /// The exact noise prediction ε = (x_t − √ᾱ·μ)/√(1−ᾱ) of the oracle UNet for one latent value.
    /// </summary>
    public static float NoisePrediction(float noisyLatent, float targetLatent, double timestep)
    {
        double alpha = AlphaCumprodExact(timestep);
        return (float)((noisyLatent - (Math.Sqrt(alpha) * targetLatent)) / Math.Sqrt(1 - alpha));
    }

    private static double AlphaCumprodExact(double timestep)
    {
        double t = Math.Clamp(timestep, 0, OracleConstants.TrainTimesteps - 1);
        int lo = (int)Math.Floor(t), hi = (int)Math.Ceiling(t);
        var table = OracleConstants.LogSigma;
        double logSigma = table[lo] + ((t - lo) * (table[hi] - table[lo]));
        return 1 / (1 + Math.Exp(2 * logSigma));
    }

    /// <summary>
    /// VAE decoder for one pixel: <c>rgb = M·z + c</c> in model space ([-1, 1] before the pipeline's x/2+0.5 clamp).
    /// <paramref name="latent4"/> is the decoder's input, i.e. the latent after the pipeline divided it by 0.18215.
    /// </summary>
    public static float[] DecodePixel(ReadOnlySpan<float> latent4)
    {
        if (latent4.Length != OracleConstants.LatentChannels)
        {
            throw new ArgumentException("Expected 4 latent channels.", nameof(latent4));
        }

        var rgb = new float[3];
        for (int i = 0; i < 3; i++)
        {
            double s = OracleConstants.DecoderOffset[i];
            for (int k = 0; k < 4; k++)
            {
                s += OracleConstants.DecoderMatrix[(i * 4) + k] * latent4[k];
            }

            rgb[i] = (float)s;
        }

        return rgb;
    }

    /// <summary>
    /// VAE encoder for one (8×8-averaged) pixel: <c>z = E·(rgb − c)</c>, the decoder's right inverse; the result is the
    /// encoder output before the pipeline multiplies it by 0.18215, so <c>DecodePixel(EncodePixel(rgb)) == rgb</c>.
    /// </summary>
    public static float[] EncodePixel(ReadOnlySpan<float> rgb3)
    {
        if (rgb3.Length != 3)
        {
            throw new ArgumentException("Expected 3 colour channels.", nameof(rgb3));
        }

        var latent = new float[4];
        for (int k = 0; k < 4; k++)
        {
            double s = OracleConstants.EncoderBias[k];
            for (int j = 0; j < 3; j++)
            {
                s += OracleConstants.EncoderMatrix[(k * 3) + j] * rgb3[j];
            }

            latent[k] = (float)s;
        }

        return latent;
    }
}
