namespace RenderFarm.ModelGenerator.Oracle;

/// <summary>
/// The fixed numbers behind the oracle model, shared by the ONNX graphs and <see cref="OracleReference"/>
/// so both compute exactly the same function. Every constant is a closed formula (documented in models/README.md),
/// not a random draw, so the model can be rebuilt from the README alone.
/// </summary>
internal static class OracleConstants
{
    public const int SequenceLength = 77;
    public const int HiddenSize = 768;
    public const int LatentChannels = 4;
    public const int EndOfText = 513;
    public const int TrainTimesteps = 1000;

    /// <summary>Amplitude of the target latent: |μ| &lt; A.</summary>
    public const float TargetAmplitude = 0.35f;

    /// <summary>Slope inside the tanh of the target latent.</summary>
    public const float TargetSlope = 1.0f;

    /// <summary>The VAE scaling factor of SD 1.x; the pipeline multiplies encoder outputs and divides decoder inputs by it.</summary>
    public const float VaeScalingFactor = 0.18215f;

    private const double GoldenFraction = 0.6180339887498949;

    /// <summary>ω_d = 0.02 + 0.5·frac((d+1)·φ⁻¹): 768 distinct frequencies in [0.02, 0.52).</summary>
    public static readonly float[] Omega = CreateOmega();

    /// <summary>W[c,d] = sin(2π·frac((d+1)·γ_c)) / √384 with γ_c = frac(√p), p = 2, 3, 5, 7; row-major 4×768.</summary>
    public static readonly float[] TargetProjection = CreateTargetProjection();

    /// <summary>Decoder per-pixel map M (3×4, row-major), applied to the unscaled latent z/0.18215.</summary>
    public static readonly float[] DecoderMatrix =
    [
        0.30f, 0.15f, -0.10f, -0.05f,
        0.20f, -0.25f, 0.10f, 0.05f,
        0.10f, 0.05f, 0.30f, -0.15f,
    ];

    /// <summary>Decoder offset c: the colour of a zero latent.</summary>
    public static readonly float[] DecoderOffset = [0.05f, 0.00f, -0.05f];

    /// <summary>Encoder map E = Mᵀ(MMᵀ)⁻¹ (4×3, row-major), the minimum-norm right inverse: M·E = I₃.</summary>
    public static readonly float[] EncoderMatrix = CreateEncoderMatrix();

    /// <summary>Encoder bias −E·c, so that encode(rgb) = E·(rgb − c).</summary>
    public static readonly float[] EncoderBias = CreateEncoderBias();

    /// <summary>log σ_i = ½·log((1−ᾱ_i)/ᾱ_i) for SD's 1000 scaled-linear training timesteps, in double.</summary>
    public static readonly double[] LogSigma = CreateLogSigma();

    private static float[] CreateOmega()
    {
        var omega = new float[HiddenSize];
        for (int d = 0; d < HiddenSize; d++)
        {
            omega[d] = (float)(0.02 + (0.5 * Frac((d + 1) * GoldenFraction)));
        }

        return omega;
    }

    private static float[] CreateTargetProjection()
    {
        double[] gamma = [Frac(Math.Sqrt(2)), Frac(Math.Sqrt(3)), Frac(Math.Sqrt(5)), Frac(Math.Sqrt(7))];
        var w = new float[LatentChannels * HiddenSize];
        for (int c = 0; c < LatentChannels; c++)
        {
            for (int d = 0; d < HiddenSize; d++)
            {
                w[(c * HiddenSize) + d] = (float)(Math.Sin(2 * Math.PI * Frac((d + 1) * gamma[c])) / Math.Sqrt(384));
            }
        }

        return w;
    }

    private static float[] CreateEncoderMatrix()
    {
        // (M Mᵀ)⁻¹ by the adjugate: M Mᵀ is a 3×3 symmetric positive-definite matrix.
        var m = DecoderMatrix;
        var g = new double[3, 3];
        for (int i = 0; i < 3; i++)
        {
            for (int j = 0; j < 3; j++)
            {
                double s = 0;
                for (int k = 0; k < 4; k++)
                {
                    s += (double)m[(i * 4) + k] * m[(j * 4) + k];
                }

                g[i, j] = s;
            }
        }

        double det = (g[0, 0] * ((g[1, 1] * g[2, 2]) - (g[1, 2] * g[2, 1])))
            - (g[0, 1] * ((g[1, 0] * g[2, 2]) - (g[1, 2] * g[2, 0])))
            + (g[0, 2] * ((g[1, 0] * g[2, 1]) - (g[1, 1] * g[2, 0])));
        var inv = new double[3, 3];
        for (int i = 0; i < 3; i++)
        {
            for (int j = 0; j < 3; j++)
            {
                // Cofactor of g[j,i] (transposed) over the determinant.
                int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
                inv[i, j] = ((g[r0, c0] * g[r1, c1]) - (g[r0, c1] * g[r1, c0])) / det;
            }
        }

        var e = new float[4 * 3];
        for (int k = 0; k < 4; k++)
        {
            for (int j = 0; j < 3; j++)
            {
                double s = 0;
                for (int i = 0; i < 3; i++)
                {
                    s += m[(i * 4) + k] * inv[i, j];
                }

                e[(k * 3) + j] = (float)s;
            }
        }

        return e;
    }

    private static float[] CreateEncoderBias()
    {
        var bias = new float[4];
        for (int k = 0; k < 4; k++)
        {
            double s = 0;
            for (int j = 0; j < 3; j++)
            {
                s += (double)EncoderMatrix[(k * 3) + j] * DecoderOffset[j];
            }

            bias[k] = (float)-s;
        }

        return bias;
    }

    private static double[] CreateLogSigma()
    {
        double start = Math.Sqrt(0.00085), end = Math.Sqrt(0.012);
        var logSigma = new double[TrainTimesteps];
        double alphaCumprod = 1;
        for (int i = 0; i < TrainTimesteps; i++)
        {
            double root = start + ((end - start) * i / (TrainTimesteps - 1));
            alphaCumprod *= 1 - (root * root);
            logSigma[i] = 0.5 * Math.Log((1 - alphaCumprod) / alphaCumprod);
        }

        return logSigma;
    }

    private static double Frac(double x) => x - Math.Floor(x);
}
