using RenderFarm.ModelGenerator.Graph;
using RenderFarm.Onnx;
using static RenderFarm.ModelGenerator.Oracle.OracleConstants;

namespace RenderFarm.ModelGenerator.Oracle;

/// <summary>
/// The oracle: four ONNX graphs with the I/O of a Stable Diffusion 1.x export whose outputs are closed-form
/// functions (see <see cref="OracleReference"/>), so an engine's denoising loop has an exactly known answer.
/// </summary>
internal static class OracleModel
{
    public static ModelProto TextEncoder(OracleModelOptions options)
    {
        var g = new GraphBuilder("oracle_text_encoder");
        var io = new FloatEdges(g, options.Float16);
        string ids = g.Input(ModelNames.InputIds, ElementType.Int32, ModelNames.Batch, SequenceLength);

        string offset = g.Sub(g.Cast(ids, ElementType.Float), g.Scalar(EndOfText));
        string omega = g.Weight("omega", Omega, HiddenSize);
        string hidden = g.Node("Sin", [g.Mul(g.Unsqueeze(offset, -1), omega)]);

        // The export's pooled output is the EOS row, which is all zeros here; the mean row carries the prompt instead.
        string pooled = g.ReduceMean(hidden, 1, keepDims: false);

        io.Output(hidden, ModelNames.LastHiddenState, ModelNames.Batch, SequenceLength, HiddenSize);
        io.Output(pooled, ModelNames.PoolerOutput, ModelNames.Batch, HiddenSize);
        return g.Build("RenderFarm oracle text encoder: last_hidden_state[b,k,d] = sin(omega_d * (input_ids[b,k] - 513)).");
    }

    public static ModelProto Unet(OracleModelOptions options)
    {
        var g = new GraphBuilder("oracle_unet");
        var io = new FloatEdges(g, options.Float16);
        string sample = io.Input(ModelNames.Sample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);
        string timestep = options.FloatTimestep
            ? g.Input(ModelNames.Timestep, ElementType.Float, 1)
            : g.Cast(g.Input(ModelNames.Timestep, ElementType.Int64, 1), ElementType.Float);
        string context = io.Input(ModelNames.EncoderHiddenStates, ModelNames.Batch, SequenceLength, HiddenSize);

        string sqrtAlpha, sqrtOneMinusAlpha;
        using (g.Scope("schedule"))
        {
            // Broadcastable [T,1,1,1]: one timestep for the whole batch (diffusers passes np.array([t])).
            string t = g.Node("Clip", [g.Reshape(timestep, -1, 1, 1, 1), g.Scalar(0), g.Scalar(TrainTimesteps - 1)]);
            string lower = g.Node("Floor", [t]);
            string upper = g.Node("Ceil", [t]);
            string table = g.Weight("log_sigma", LogSigma.Select(x => (float)x).ToArray(), TrainTimesteps);
            string logLower = g.Node("Gather", [table, g.Cast(lower, ElementType.Int64)]);
            string logUpper = g.Node("Gather", [table, g.Cast(upper, ElementType.Int64)]);
            string logSigma = g.Add(logLower, g.Mul(g.Sub(t, lower), g.Sub(logUpper, logLower)));

            // ᾱ = 1/(1+σ²) = sigmoid(−2 log σ) and 1−ᾱ = sigmoid(2 log σ), each without cancellation.
            sqrtAlpha = g.Sqrt(g.Sigmoid(g.Mul(logSigma, -2f)));
            sqrtOneMinusAlpha = g.Sqrt(g.Sigmoid(g.Mul(logSigma, 2f)));
        }

        string target;
        using (g.Scope("target"))
        {
            string summed = g.ReduceSum(context, 1, keepDims: false);
            string projection = g.Weight("w_transposed", Transpose(TargetProjection, LatentChannels, HiddenSize), HiddenSize, LatentChannels);
            string mu = g.Mul(g.Tanh(g.Mul(g.MatMul(summed, projection), TargetSlope)), TargetAmplitude);
            target = g.Reshape(mu, -1, LatentChannels, 1, 1);
        }

        string epsilon = g.Div(g.Sub(sample, g.Mul(sqrtAlpha, target)), sqrtOneMinusAlpha);
        io.Output(epsilon, ModelNames.OutSample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);
        return g.Build("RenderFarm oracle UNet: out_sample = (sample - sqrt(abar_t) * mu(encoder_hidden_states)) / sqrt(1 - abar_t).");
    }

    public static ModelProto VaeDecoder(OracleModelOptions options)
    {
        var g = new GraphBuilder("oracle_vae_decoder");
        var io = new FloatEdges(g, options.Float16);
        string latent = io.Input(ModelNames.LatentSample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);
        string weight = g.Weight("m", DecoderMatrix, 3, LatentChannels, 1, 1);
        string bias = g.Weight("c", DecoderOffset, 3);
        string image = g.UpsampleNearest(g.Conv(latent, weight, bias, kernel: 1), 8);
        io.Output(image, ModelNames.Sample, ModelNames.Batch, 3, ModelNames.ImageHeight, ModelNames.ImageWidth);
        return g.Build("RenderFarm oracle VAE decoder: rgb = M * latent + c per latent pixel, nearest-neighbour x8.");
    }

    public static ModelProto VaeEncoder(OracleModelOptions options)
    {
        var g = new GraphBuilder("oracle_vae_encoder");
        var io = new FloatEdges(g, options.Float16);
        string image = io.Input(ModelNames.Sample, ModelNames.Batch, 3, ModelNames.ImageHeight, ModelNames.ImageWidth);
        string pooled = g.Node("AveragePool", [image], Attr.Ints("kernel_shape", 8, 8), Attr.Ints("strides", 8, 8));
        string weight = g.Weight("e", EncoderMatrix, LatentChannels, 3, 1, 1);
        string bias = g.Weight("minus_e_c", EncoderBias, LatentChannels);
        string latent = g.Conv(pooled, weight, bias, kernel: 1);
        io.Output(latent, ModelNames.LatentSample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);
        return g.Build("RenderFarm oracle VAE encoder: latent = E * (avgpool8(rgb) - c), the decoder's right inverse (deterministic).");
    }

    private static float[] Transpose(float[] matrix, int rows, int columns)
    {
        var result = new float[matrix.Length];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                result[(c * rows) + r] = matrix[(r * columns) + c];
            }
        }

        return result;
    }
}
