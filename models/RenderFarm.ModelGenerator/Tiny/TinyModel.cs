using RenderFarm.ModelGenerator.Graph;
using RenderFarm.Onnx;

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

    /// <summary>
    /// SDXL's second text encoder (OpenCLIP ViT-bigG, 1280 wide against CLIP ViT-L's 768) is the wider of its two: the
    /// tiny one is twice the first's width. Its projection keeps the width, as bigG's does (1280 → 1280).
    /// </summary>
    public const int XlText2Width = 128;
    public const int XlProjectionWidth = XlText2Width;

    /// <summary>Channels of each of the six size/crop numbers' sinusoid (<c>addition_time_embed_dim</c>: 256 in SDXL).</summary>
    public const int XlTimeIdChannels = 8;
    public const int XlTimeIds = 6;
    public const int TextLayers = 2;
    public const int TextHeads = 2;
    public const int LatentChannels = 4;
    public const int UnetChannels = 32;
    public const int UnetInnerChannels = 64;
    public const int TimeChannels = 4 * UnetChannels;
    public const int AttentionHeads = 2;

    private const ulong Seed = 0x5D_2026_11_23UL;

    /// <summary>The width of the text encoder's hidden states, which the UNet's cross-attention reads.</summary>
    public static int TextWidthOf(TinyModelOptions options) => options.Family switch
    {
        TinyFamily.StableDiffusion2 => Sd2TextWidth,
        // SDXL concatenates its two encoders' penultimate hidden states along the feature axis (768 + 1280 = 2048).
        TinyFamily.StableDiffusionXL => TextWidth + XlText2Width,
        _ => TextWidth,
    };

    public static ModelProto TextEncoder(TinyModelOptions options)
    {
        if (options.Family == TinyFamily.StableDiffusionXL)
        {
            return XlTextEncoder(options, second: false);
        }

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

    /// <summary>
    /// SDXL's text encoders as Optimum exports them with <c>output_hidden_states</c>: the first (CLIP ViT-L style,
    /// quick-GELU) gives <c>last_hidden_state</c>, <c>pooler_output</c> and <c>hidden_states.0..L</c>; the second
    /// (OpenCLIP bigG style, exact GELU, <c>CLIPTextModelWithProjection</c>) gives <c>text_embeds</c> (the pooled row
    /// through a bias-free projection), <c>last_hidden_state</c> and <c>hidden_states.0..L</c>. <c>hidden_states.i</c>
    /// is the residual stream after i layers, before the final LayerNorm, as in transformers.
    /// </summary>
    public static ModelProto TextEncoder2(TinyModelOptions options) => XlTextEncoder(options, second: true);

    private static ModelProto XlTextEncoder(TinyModelOptions options, bool second)
    {
        int width = second ? XlText2Width : TextWidth;
        // The second encoder's weights come from another stream, so the two encoders are different functions.
        var seed = second ? Seed ^ 0xB16_0000UL : Seed;
        var g = new GraphBuilder(second ? "tiny_text_encoder_2" : "tiny_text_encoder");
        var io = new FloatEdges(g, options.Float16);
        var nn = new Layers(g, new SeededWeights(seed));
        string ids = g.Input(ModelNames.InputIds, ElementType.Int32, ModelNames.Batch, SequenceLength);

        string x;
        using (g.Scope("embeddings"))
        {
            var weights = new SeededWeights(seed);
            string tokens = g.Weight("token_embedding", weights.Scaled("embeddings/token_embedding", Vocabulary * width, 1, 0.5), Vocabulary, width);
            string positions = g.Weight("position_embedding", weights.Scaled("embeddings/position_embedding", SequenceLength * width, 1, 0.5), SequenceLength, width);
            x = g.Add(g.Node("Gather", [tokens, ids]), positions);
        }

        var states = new List<string> { x };
        string mask = g.Weight("causal_mask", CausalMask(SequenceLength), SequenceLength, SequenceLength);
        for (int layer = 0; layer < TextLayers; layer++)
        {
            using var _ = g.Scope($"encoder/layers.{layer}");
            string h = nn.LayerNorm(x, width, "layer_norm1");
            x = g.Add(x, nn.Attention(h, width, h, width, TextHeads, "self_attn", mask));
            x = g.Add(x, nn.FeedForward(nn.LayerNorm(x, width, "layer_norm2"), width, "mlp", quickGelu: !second));
            states.Add(x);
        }

        string hidden = nn.LayerNorm(x, width, "final_layer_norm");
        string eos = g.Node("ArgMax", [g.Cast(ids, ElementType.Float)], Attr.Int("axis", -1), Attr.Int("keepdims", 1));
        string pooled = g.Node("GatherND", [hidden, eos], Attr.Int("batch_dims", 1));
        if (second)
        {
            using var _ = g.Scope("text_projection");
            var weights = new SeededWeights(seed);
            string projection = g.Weight("weight", weights.Scaled("text_projection/weight", width * XlProjectionWidth, width), width, XlProjectionWidth);
            io.Output(g.MatMul(pooled, projection), ModelNames.TextEmbeds, ModelNames.Batch, XlProjectionWidth);
            io.Output(hidden, ModelNames.LastHiddenState, ModelNames.Batch, SequenceLength, width);
        }
        else
        {
            io.Output(hidden, ModelNames.LastHiddenState, ModelNames.Batch, SequenceLength, width);
            io.Output(pooled, ModelNames.PoolerOutput, ModelNames.Batch, width);
        }

        for (int i = 0; i < states.Count; i++)
        {
            io.Output(states[i], ModelNames.HiddenStates(i), ModelNames.Batch, SequenceLength, width);
        }

        return Finish(g, second
            ? "SDXL text encoder 2: OpenCLIP bigG-style with projection, 2 pre-LN layers, width 128, 2 heads, exact GELU, causal mask, hidden states out"
            : "SDXL text encoder 1: CLIP ViT-L-style, 2 pre-LN layers, width 64, 2 heads, quick-GELU, causal mask, hidden states out");
    }

    public static ModelProto Unet(TinyModelOptions options)
    {
        int textWidth = TextWidthOf(options);
        var xl = options.Family == TinyFamily.StableDiffusionXL;
        var g = new GraphBuilder("tiny_unet");
        var io = new FloatEdges(g, options.Float16);
        var nn = new Layers(g, new SeededWeights(Seed));
        const int c1 = UnetChannels, c2 = UnetInnerChannels;
        string sample = io.Input(ModelNames.Sample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);
        // Optimum's SDXL export declares the timestep a float scalar (its DummyTimestepInputGenerator's shape is []);
        // SD 1.x exports of the older layout, like the tiny model, take int64 [1].
        string timestep = xl ? io.Input(ModelNames.Timestep) : g.Cast(g.Input(ModelNames.Timestep, ElementType.Int64, 1), ElementType.Float);
        string context = io.Input(ModelNames.EncoderHiddenStates, ModelNames.Batch, SequenceLength, textWidth);
        string? textEmbeds = xl ? io.Input(ModelNames.TextEmbeds, ModelNames.Batch, XlProjectionWidth) : null;
        string? timeIds = xl ? io.Input(ModelNames.TimeIds, ModelNames.Batch, XlTimeIds) : null;

        string temb;
        using (g.Scope("time_embedding"))
        {
            // SD's Timesteps(flip_sin_to_cos=True): [cos(t·f), sin(t·f)], f_i = 10000^(−i/half).
            const int half = UnetChannels / 2;
            string angles = g.Mul(g.Reshape(timestep, -1, 1), g.Weight("frequencies", Frequencies(half), half));
            string sinusoid = g.Concat(-1, g.Node("Cos", [angles]), g.Node("Sin", [angles]));
            temb = nn.Linear(g.Silu(nn.Linear(sinusoid, UnetChannels, TimeChannels, "linear_1")), TimeChannels, TimeChannels, "linear_2");
        }

        if (xl)
        {
            temb = g.Add(temb, XlAddEmbedding(g, nn, textEmbeds!, timeIds!));
        }

        string x = nn.Conv(sample, LatentChannels, c1, 3, "conv_in");

        // Level 1, full latent resolution: attention over h·w tokens, as in SD's first level. SDXL has no attention at
        // its first level (DownBlock2D), so its largest attention is over a quarter of the latent pixels.
        x = nn.ResBlock(x, c1, c1, "down_blocks.0/resnets.0", temb, TimeChannels);
        string skip1 = x = xl ? x : nn.SpatialTransformer(x, c1, context, textWidth, AttentionHeads, "down_blocks.0/attentions.0");

        // Level 2, half resolution (ceil for odd sizes).
        x = nn.Downsample(x, c1, c2, "down_blocks.0/downsamplers.0");
        x = nn.ResBlock(x, c2, c2, "down_blocks.1/resnets.0", temb, TimeChannels);
        string skip2 = x = xl ? nn.SpatialTransformer(x, c2, context, textWidth, AttentionHeads, "down_blocks.1/attentions.0") : x;

        x = nn.ResBlock(x, c2, c2, "mid_block/resnets.0", temb, TimeChannels);
        x = nn.SpatialTransformer(x, c2, context, textWidth, AttentionHeads, "mid_block/attentions.0");
        x = nn.ResBlock(x, c2, c2, "mid_block/resnets.1", temb, TimeChannels);

        x = nn.ResBlock(g.Concat(1, x, skip2), 2 * c2, c2, "up_blocks.0/resnets.0", temb, TimeChannels);
        if (xl)
        {
            x = nn.SpatialTransformer(x, c2, context, textWidth, AttentionHeads, "up_blocks.0/attentions.0");
        }

        x = nn.CropTo(nn.Upsample(x, c2, c2, "up_blocks.0/upsamplers.0"), skip1);

        x = nn.ResBlock(g.Concat(1, x, skip1), c2 + c1, c1, "up_blocks.1/resnets.0", temb, TimeChannels);
        x = xl ? x : nn.SpatialTransformer(x, c1, context, textWidth, AttentionHeads, "up_blocks.1/attentions.0");

        string output = nn.Conv(g.Silu(nn.GroupNorm(x, c1, "conv_norm_out")), c1, LatentChannels, 3, "conv_out", gain: 1.5);
        io.Output(output, ModelNames.OutSample, ModelNames.Batch, LatentChannels, ModelNames.LatentHeight, ModelNames.LatentWidth);
        return Finish(g, xl
            ? "SDXL UNet: 32/64 channels, two levels, attention at half latent resolution only, added conditioning from text_embeds and time_ids"
            : "UNet: 32/64 channels, two levels, self- and cross-attention at full latent resolution");
    }

    /// <summary>
    /// SDXL's added conditioning (<c>addition_embed_type: text_time</c>): each of the six <c>time_ids</c> through the
    /// timestep sinusoid (<c>add_time_proj</c>), flattened per row and appended to the pooled <c>text_embeds</c>, then
    /// <c>add_embedding</c>'s linear → SiLU → linear; the result is added to the timestep embedding.
    /// </summary>
    private static string XlAddEmbedding(GraphBuilder g, Layers nn, string textEmbeds, string timeIds)
    {
        const int half = XlTimeIdChannels / 2;
        string timeEmbeds;
        using (g.Scope("add_time_proj"))
        {
            string angles = g.Mul(g.Reshape(timeIds, -1, 1), g.Weight("frequencies", Frequencies(half), half));
            timeEmbeds = g.Reshape(g.Concat(-1, g.Node("Cos", [angles]), g.Node("Sin", [angles])), -1, XlTimeIds * XlTimeIdChannels);
        }

        using var _ = g.Scope("add_embedding");
        const int inputs = XlProjectionWidth + (XlTimeIds * XlTimeIdChannels);
        string added = g.Concat(-1, textEmbeds, timeEmbeds);
        return nn.Linear(g.Silu(nn.Linear(added, inputs, TimeChannels, "linear_1")), TimeChannels, TimeChannels, "linear_2");
    }

    private static float[] Frequencies(int half) =>
        Enumerable.Range(0, half).Select(i => (float)Math.Exp(-Math.Log(10000) * i / half)).ToArray();

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
