using RenderFarm.ModelGenerator.Graph;
using RenderFarm.ModelGenerator.Onnx;

namespace RenderFarm.ModelGenerator.Tiny;

/// <summary>
/// Stable Diffusion's architecture in miniature with seeded random weights: the same tensors, the same kinds of
/// layers and, above all, the same growth of time and memory with resolution (attention over every latent pixel at
/// full latent resolution), in a few megabytes. Its images are meaningless; see models/README.md.
/// </summary>
internal static class TinyModel
{
    public const int Vocabulary = 514;
    public const int SequenceLength = 77;
    public const int TextWidth = 64;

    /// <summary>SD 2.x's text encoder is a third wider than SD 1.x's (1024 vs 768): so is the tiny one.</summary>
    public const int Sd2TextWidth = 96;
    public const int TextLayers = 2;
    public const int TextHeads = 2;
    public const int LatentChannels = 4;
    public const int UnetChannels = 32;
    public const int UnetInnerChannels = 64;
    public const int TimeChannels = 4 * UnetChannels;
    public const int AttentionHeads = 2;

    private const ulong Seed = 0x5D_2026_11_23UL;

    /// <summary>The width of the text encoder's hidden states, which the UNet's cross-attention reads.</summary>
    public static int TextWidthOf(TinyModelOptions options) =>
        options.Family == TinyFamily.StableDiffusion2 ? Sd2TextWidth : TextWidth;

    public static ModelProto TextEncoder(TinyModelOptions options)
    {
        int textWidth = TextWidthOf(options);
        var sd2 = options.Family == TinyFamily.StableDiffusion2;
        var g = new GraphBuilder("tiny_text_encoder");
        var io = new FloatEdges(g, options.Float16);
        var nn = new Layers(g, new SeededWeights(Seed));
        string ids = g.Input(ModelNames.InputIds, ElementType.Int32, ModelNames.Batch, SequenceLength);

        string x;
        using (g.Scope("embeddings"))
        {
            var weights = new SeededWeights(Seed);
            string tokens = g.Weight("token_embedding", weights.Scaled("embeddings/token_embedding", Vocabulary * textWidth, 1, 0.5), Vocabulary, textWidth);
            string positions = g.Weight("position_embedding", weights.Scaled("embeddings/position_embedding", SequenceLength * textWidth, 1, 0.5), SequenceLength, textWidth);
            x = g.Add(g.Node("Gather", [tokens, ids]), positions);
        }

        string mask = g.Weight("causal_mask", CausalMask(SequenceLength), SequenceLength, SequenceLength);
        for (int layer = 0; layer < TextLayers; layer++)
        {
            using var _ = g.Scope($"encoder/layers.{layer}");
            string h = nn.LayerNorm(x, textWidth, "layer_norm1");
            x = g.Add(x, nn.Attention(h, textWidth, h, textWidth, TextHeads, "self_attn", mask));
            // OpenCLIP (SD 2.x) uses the exact GELU where OpenAI's CLIP (SD 1.x) uses quick-GELU.
            x = g.Add(x, nn.FeedForward(nn.LayerNorm(x, textWidth, "layer_norm2"), textWidth, "mlp", quickGelu: !sd2));
        }

        string hidden = nn.LayerNorm(x, textWidth, "final_layer_norm");

        // CLIP pools the row of the first end-of-text token, which has the largest id.
        string eos = g.Node("ArgMax", [g.Cast(ids, ElementType.Float)], Attr.Int("axis", -1), Attr.Int("keepdims", 1));
        string pooled = g.Node("GatherND", [hidden, eos], Attr.Int("batch_dims", 1));

        io.Output(hidden, ModelNames.LastHiddenState, ModelNames.Batch, SequenceLength, textWidth);
        io.Output(pooled, ModelNames.PoolerOutput, ModelNames.Batch, textWidth);
        return Finish(g, sd2
            ? "text encoder: OpenCLIP-style (SD 2.x), 2 pre-LN layers, width 96, 2 heads, exact GELU, causal mask"
            : "text encoder: CLIP-style, 2 pre-LN layers, width 64, 2 heads, causal mask");
    }

    public static ModelProto Unet(TinyModelOptions options)
    {
        int textWidth = TextWidthOf(options);
        var g = new GraphBuilder("tiny_unet");
        var io = new FloatEdges(g, options.Float16);
        var nn = new Layers(g, new SeededWeights(Seed));
        const int c1 = UnetChannels, c2 = UnetInnerChannels;
        string sample = io.Input(ModelNames.Sample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);
        string timestep = g.Cast(g.Input(ModelNames.Timestep, ElementType.Int64, 1), ElementType.Float);
        string context = io.Input(ModelNames.EncoderHiddenStates, ModelNames.Batch, SequenceLength, textWidth);

        string temb;
        using (g.Scope("time_embedding"))
        {
            // SD's Timesteps(flip_sin_to_cos=True): [cos(t·f), sin(t·f)], f_i = 10000^(−i/half).
            const int half = UnetChannels / 2;
            var frequencies = Enumerable.Range(0, half).Select(i => (float)Math.Exp(-Math.Log(10000) * i / half)).ToArray();
            string angles = g.Mul(g.Reshape(timestep, -1, 1), g.Weight("frequencies", frequencies, half));
            string sinusoid = g.Concat(-1, g.Node("Cos", [angles]), g.Node("Sin", [angles]));
            temb = nn.Linear(g.Silu(nn.Linear(sinusoid, UnetChannels, TimeChannels, "linear_1")), TimeChannels, TimeChannels, "linear_2");
        }

        string x = nn.Conv(sample, LatentChannels, c1, 3, "conv_in");

        // Level 1, full latent resolution: attention over h·w tokens, as in SD's first level.
        x = nn.ResBlock(x, c1, c1, "down_blocks.0/resnets.0", temb, TimeChannels);
        string skip1 = x = nn.SpatialTransformer(x, c1, context, textWidth, AttentionHeads, "down_blocks.0/attentions.0");

        // Level 2, half resolution (ceil for odd sizes).
        x = nn.Downsample(x, c1, c2, "down_blocks.0/downsamplers.0");
        string skip2 = x = nn.ResBlock(x, c2, c2, "down_blocks.1/resnets.0", temb, TimeChannels);

        x = nn.ResBlock(x, c2, c2, "mid_block/resnets.0", temb, TimeChannels);
        x = nn.SpatialTransformer(x, c2, context, textWidth, AttentionHeads, "mid_block/attentions.0");
        x = nn.ResBlock(x, c2, c2, "mid_block/resnets.1", temb, TimeChannels);

        x = nn.ResBlock(g.Concat(1, x, skip2), 2 * c2, c2, "up_blocks.0/resnets.0", temb, TimeChannels);
        x = nn.CropTo(nn.Upsample(x, c2, c2, "up_blocks.0/upsamplers.0"), skip1);

        x = nn.ResBlock(g.Concat(1, x, skip1), c2 + c1, c1, "up_blocks.1/resnets.0", temb, TimeChannels);
        x = nn.SpatialTransformer(x, c1, context, textWidth, AttentionHeads, "up_blocks.1/attentions.0");

        string output = nn.Conv(g.Silu(nn.GroupNorm(x, c1, "conv_norm_out")), c1, LatentChannels, 3, "conv_out", gain: 1.5);
        io.Output(output, ModelNames.OutSample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);
        return Finish(g, "UNet: 32/64 channels, two levels, self- and cross-attention at full latent resolution");
    }

    public static ModelProto VaeDecoder(TinyModelOptions options)
    {
        var g = new GraphBuilder("tiny_vae_decoder");
        var io = new FloatEdges(g, options.Float16);
        var nn = new Layers(g, new SeededWeights(Seed));
        string latent = io.Input(ModelNames.LatentSample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);

        string x = nn.Conv(latent, LatentChannels, 64, 3, "decoder/conv_in");
        x = nn.ResBlock(x, 64, 64, "decoder/mid_block/resnets.0");
        int[] channels = [64, 32, 16, 16];
        for (int stage = 0; stage < 3; stage++)
        {
            x = nn.Upsample(x, channels[stage], channels[stage + 1], $"decoder/up_blocks.{stage}/upsamplers.0");
            x = nn.ResBlock(x, channels[stage + 1], channels[stage + 1], $"decoder/up_blocks.{stage}/resnets.0");
        }

        string image = nn.Conv(g.Silu(nn.GroupNorm(x, 16, "decoder/conv_norm_out")), 16, 3, 3, "decoder/conv_out", gain: 0.5);
        io.Output(image, ModelNames.Sample, ModelNames.Batch, 3, ModelNames.ImageHeight, ModelNames.ImageWidth);
        return Finish(g, "VAE decoder: 64-32-16-16 channels, three nearest x2 + conv stages");
    }

    public static ModelProto VaeEncoder(TinyModelOptions options)
    {
        var g = new GraphBuilder("tiny_vae_encoder");
        var io = new FloatEdges(g, options.Float16);
        var nn = new Layers(g, new SeededWeights(Seed));
        string image = io.Input(ModelNames.Sample, ModelNames.Batch, 3, ModelNames.ImageHeight, ModelNames.ImageWidth);

        string x = nn.Conv(image, 3, 16, 3, "encoder/conv_in");
        x = nn.ResBlock(x, 16, 16, "encoder/down_blocks.0/resnets.0");
        int[] channels = [16, 16, 32, 64];
        for (int stage = 0; stage < 3; stage++)
        {
            x = nn.Downsample(x, channels[stage], channels[stage + 1], $"encoder/down_blocks.{stage}/downsamplers.0");
            x = nn.ResBlock(x, channels[stage + 1], channels[stage + 1], $"encoder/down_blocks.{stage + 1}/resnets.0");
        }

        // The mean of the latent distribution (a real export returns a sample of it); scaled like SD's latents, whose
        // spread is about 1/0.18215, so the pipeline's ×0.18215 brings them to the noise's unit scale.
        string mean = nn.Conv(g.Silu(nn.GroupNorm(x, 64, "encoder/conv_norm_out")), 64, LatentChannels, 3, "encoder/conv_out", gain: 8);
        io.Output(mean, ModelNames.LatentSample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);
        return Finish(g, "VAE encoder: mirror of the decoder with stride-2 convs; outputs the latent mean (deterministic)");
    }

    private static float[] CausalMask(int n)
    {
        var mask = new float[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                mask[(i * n) + j] = -1e9f;
            }
        }

        return mask;
    }

    private static ModelProto Finish(GraphBuilder g, string description) =>
        g.Build($"RenderFarm tiny SD model ({g.ParameterCount} parameters), random weights from a fixed seed: {description}.");
}
