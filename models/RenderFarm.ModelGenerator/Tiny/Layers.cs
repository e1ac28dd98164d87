using RenderFarm.ModelGenerator.Graph;

namespace RenderFarm.ModelGenerator.Tiny;

/// <summary>
/// The building blocks of Stable Diffusion's networks (linear, conv, GroupNorm, ResNet block, attention, transformer
/// block, resampling) over <see cref="GraphBuilder"/>, with seeded weights. Names follow diffusers' module names.
/// </summary>
internal sealed class Layers(GraphBuilder g, SeededWeights weights)
{
    public const int Groups = 8;

    // Gain of the last layer of each residual branch: below 1 so a stack of blocks does not grow the residual stream.
    private const double ResidualGain = 0.5;

    public GraphBuilder Graph => g;

    public string Linear(string x, int inputs, int outputs, string name, double gain = 1.0)
    {
        using var _ = g.Scope(name);
        string w = g.Weight("weight", weights.Scaled(g.ScopedName("weight"), inputs * outputs, inputs, gain), inputs, outputs);
        string b = g.Weight("bias", SeededWeights.Constant(outputs, 0f), outputs);
        return g.Add(g.MatMul(x, w), b);
    }

    public string Conv(string x, int inputs, int outputs, int kernel, string name, int stride = 1, double gain = 1.0)
    {
        using var _ = g.Scope(name);
        int fanIn = inputs * kernel * kernel;
        string w = g.Weight("weight", weights.Scaled(g.ScopedName("weight"), outputs * fanIn, fanIn, gain), outputs, inputs, kernel, kernel);
        string b = g.Weight("bias", SeededWeights.Constant(outputs, 0f), outputs);
        return g.Conv(x, w, b, kernel, stride);
    }

    /// <summary>
    /// GroupNorm as Reshape [N,G,-1] → InstanceNormalization → Reshape back → affine: the pattern every runtime loads
    /// (GroupNormalization only arrived in opset 18).
    /// </summary>
    public string GroupNorm(string x, int channels, string name)
    {
        using var _ = g.Scope(name);
        string grouped = g.Reshape(x, 0, Groups, -1);
        string normalized = g.Node("InstanceNormalization",
            [grouped, g.Weight("group_scale", SeededWeights.Constant(Groups, 1f), Groups), g.Weight("group_bias", SeededWeights.Constant(Groups, 0f), Groups)],
            Attr.Float("epsilon", 1e-5f));
        string restored = g.Reshape(normalized, g.Shape(x));
        string gamma = g.Weight("weight", SeededWeights.Constant(channels, 1f), channels, 1, 1);
        string beta = g.Weight("bias", SeededWeights.Constant(channels, 0f), channels, 1, 1);
        return g.Add(g.Mul(restored, gamma), beta);
    }

    public string LayerNorm(string x, int channels, string name)
    {
        using var _ = g.Scope(name);
        return g.Node("LayerNormalization",
            [x, g.Weight("weight", SeededWeights.Constant(channels, 1f), channels), g.Weight("bias", SeededWeights.Constant(channels, 0f), channels)],
            Attr.Int("axis", -1), Attr.Float("epsilon", 1e-5f));
    }

    /// <summary>SD's ResnetBlock2D: GN → SiLU → conv3×3 (+ time embedding) → GN → SiLU → conv3×3, plus a (1×1 conv) shortcut.</summary>
    public string ResBlock(string x, int inputs, int outputs, string name, string? timeEmbedding = null, int timeChannels = 0)
    {
        using var _ = g.Scope(name);
        string h = Conv(g.Silu(GroupNorm(x, inputs, "norm1")), inputs, outputs, 3, "conv1");
        if (timeEmbedding is not null)
        {
            string t = Linear(g.Silu(timeEmbedding), timeChannels, outputs, "time_emb_proj");
            h = g.Add(h, g.Unsqueeze(t, 2, 3));
        }

        h = Conv(g.Silu(GroupNorm(h, outputs, "norm2")), outputs, outputs, 3, "conv2", gain: ResidualGain);
        string shortcut = inputs == outputs ? x : Conv(x, inputs, outputs, 1, "conv_shortcut");
        return g.Add(shortcut, h);
    }

    /// <summary>Multi-head attention of query tokens [B,N,C] over context tokens [B,M,Cc]; the score tensor is [B,heads,N,M].</summary>
    public string Attention(string x, int channels, string context, int contextChannels, int heads, string name, string? mask = null)
    {
        using var _ = g.Scope(name);
        int headSize = channels / heads;
        string q = SplitHeads(Linear(x, channels, channels, "to_q"), heads, headSize, [0, 2, 1, 3]);
        string k = SplitHeads(Linear(context, contextChannels, channels, "to_k"), heads, headSize, [0, 2, 3, 1]);
        string v = SplitHeads(Linear(context, contextChannels, channels, "to_v"), heads, headSize, [0, 2, 1, 3]);
        string scores = g.Mul(g.MatMul(q, k), 1f / MathF.Sqrt(headSize));
        if (mask is not null)
        {
            scores = g.Add(scores, mask);
        }

        string attended = g.MatMul(g.Softmax(scores), v);
        string merged = g.Reshape(g.Transpose(attended, 0, 2, 1, 3), 0, -1, channels);
        return Linear(merged, channels, channels, "to_out", ResidualGain);
    }

    /// <summary>
    /// SD's Transformer2DModel with one BasicTransformerBlock: GN → proj_in → tokens (h·w of them) → self-attention →
    /// cross-attention on the text context → feed-forward → proj_out, added to the input.
    /// </summary>
    public string SpatialTransformer(string x, int channels, string context, int contextChannels, int heads, string name)
    {
        using var _ = g.Scope(name);
        string h = Conv(GroupNorm(x, channels, "norm"), channels, channels, 1, "proj_in");
        string tokens = g.Transpose(g.Reshape(h, 0, channels, -1), 0, 2, 1);

        string n1 = LayerNorm(tokens, channels, "norm1");
        tokens = g.Add(tokens, Attention(n1, channels, n1, channels, heads, "attn1"));
        tokens = g.Add(tokens, Attention(LayerNorm(tokens, channels, "norm2"), channels, context, contextChannels, heads, "attn2"));
        tokens = g.Add(tokens, FeedForward(LayerNorm(tokens, channels, "norm3"), channels, "ff", quickGelu: false));

        string spatial = g.Reshape(g.Transpose(tokens, 0, 2, 1), g.Shape(x));
        return g.Add(x, Conv(spatial, channels, channels, 1, "proj_out", gain: ResidualGain));
    }

    public string FeedForward(string x, int channels, string name, bool quickGelu)
    {
        using var _ = g.Scope(name);
        string h = Linear(x, channels, channels * 4, "fc1");
        // quick-GELU is CLIP's x·σ(1.702x); the UNet's GELU uses the exact erf form.
        h = quickGelu ? g.Mul(h, g.Sigmoid(g.Mul(h, 1.702f))) : Gelu(h);
        return Linear(h, channels * 4, channels, "fc2", ResidualGain);
    }

    public string Downsample(string x, int inputs, int outputs, string name) =>
        Conv(x, inputs, outputs, 3, name, stride: 2);

    public string Upsample(string x, int inputs, int outputs, string name) =>
        Conv(g.UpsampleNearest(x, 2), inputs, outputs, 3, name);

    /// <summary>Crops the last two axes of <paramref name="x"/> to <paramref name="like"/>'s, undoing the ceil of a stride-2 conv on odd sizes.</summary>
    public string CropTo(string x, string like)
    {
        string ends = g.Node("Slice", [g.Shape(like), g.Int64s(2), g.Int64s(4)]);
        return g.Node("Slice", [x, g.Int64s(0, 0), ends, g.Int64s(2, 3)]);
    }

    private string Gelu(string x) =>
        g.Mul(g.Mul(x, 0.5f), g.Add(g.Node("Erf", [g.Mul(x, 1f / MathF.Sqrt(2f))]), 1f));

    private string SplitHeads(string x, int heads, int headSize, long[] perm) =>
        g.Transpose(g.Reshape(x, 0, -1, heads, headSize), perm);
}
