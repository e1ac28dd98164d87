using Microsoft.ML.OnnxRuntime;
using RenderFarm.Diffusion.Memory;

namespace RenderFarm.Diffusion.Models;

/// <summary>
/// A tiled VAE pass whose tiles all normalise with the same GroupNorm statistics, estimated first from a small
/// stand-in of the whole input (the approach of the Tiled VAE extension's fast mode): without it each tile normalises
/// with its own mean and variance and neighbouring tiles drift apart in tone. Runs a <see cref="GroupNormRewrite"/>
/// graph.
/// </summary>
internal sealed class SharedGroupNorm(OnnxComponent component, string inputName, string outputName)
{
    public OnnxComponent Component { get; } = component;

    /// <summary>Why the statistics cannot be shared for this model (the pass then falls back to per-tile statistics); null until tried or when they can.</summary>
    public string? Unavailable { get; private set; }

    /// <summary>
    /// Tiles <paramref name="input"/> as <see cref="TiledRunner.Run"/> does, every tile normalised with statistics
    /// gathered from the whole input brought down to at most <paramref name="statisticsSide"/> latent pixels a side
    /// (the tile's size by default: the gathering pass then costs what one tile costs).
    /// Returns null when the model's graph cannot take given statistics (<see cref="Unavailable"/> says why).
    /// </summary>
    public float[]? Run(ReadOnlySpan<float> input, int inChannels, int inScale, int outChannels, int outScale,
        int latentHeight, int latentWidth, TileSize tile, CancellationToken cancellationToken, int? statisticsSide = null)
    {
        if (Unavailable is not null || !TryLoad())
        {
            return null;
        }

        var (small, smallHeight, smallWidth) = StandIn(input, inChannels, latentHeight * inScale, latentWidth * inScale, statisticsSide ?? tile.Size, inScale);
        var statistics = Gather(small, inChannels, smallHeight, smallWidth);
        cancellationToken.ThrowIfCancellationRequested();
        return TiledRunner.Run(input, inChannels, inScale, outChannels, outScale, latentHeight, latentWidth, tile,
            (t, h, w) => RunWith(t, inChannels, h, w, statistics), cancellationToken);
    }

    /// <summary>Every layer's statistics over the whole of <paramref name="input"/>, each layer normalising with its own.</summary>
    public GroupNormStatistics Gather(float[] input, int channels, int height, int width)
    {
        var layers = Layers(Component.Session);
        var outputNames = Enumerable.Range(0, layers)
            .SelectMany(l => new[] { GroupNormRewrite.OwnMeanOutput(l), GroupNormRewrite.OwnVarianceOutput(l) }).ToArray();
        // The given statistics are not read with the switch off; Where broadcasts a [1,1,1] placeholder away.
        var placeholders = new GroupNormStatistics(
            Enumerable.Repeat(new[] { 0f }, layers).ToArray(), Enumerable.Repeat(new[] { 1f }, layers).ToArray());
        return Run(input, channels, height, width, useGiven: false, placeholders, outputNames, outputs =>
        {
            var means = new float[layers][];
            var variances = new float[layers][];
            for (var layer = 0; layer < layers; layer++)
            {
                means[layer] = ComponentRunner.ToFloat(outputs[2 * layer]).Data;
                variances[layer] = ComponentRunner.ToFloat(outputs[2 * layer + 1]).Data;
            }

            return new GroupNormStatistics(means, variances);
        });
    }

    /// <summary>Runs one input normalised with the given statistics.</summary>
    public float[] RunWith(float[] input, int channels, int height, int width, GroupNormStatistics statistics) =>
        Run(input, channels, height, width, useGiven: true, statistics, [outputName], outputs => ComponentRunner.ToFloat(outputs[0]).Data);

    private T Run<T>(float[] input, int channels, int height, int width, bool useGiven, GroupNormStatistics statistics,
        string[] outputNames, Func<IReadOnlyList<OrtValue>, T> read)
    {
        var session = Component.Session;
        using var run = new RunOptions();
        var names = new List<string> { inputName, GroupNormRewrite.UseGivenInput };
        var values = new List<OrtValue>
        {
            ComponentRunner.CreateFloatTensor(Component.Input(inputName).ElementDataType, input, [1, channels, height, width]),
            OrtValue.CreateTensorValueFromMemory(new[] { useGiven }, [1]),
        };
        try
        {
            for (var layer = 0; layer < statistics.Layers; layer++)
            {
                var groups = statistics.Means[layer].Length;
                names.Add(GroupNormRewrite.MeanInput(layer));
                values.Add(ComponentRunner.CreateFloatTensor(Component.Input(GroupNormRewrite.MeanInput(layer)).ElementDataType, statistics.Means[layer], [1, groups, 1]));
                names.Add(GroupNormRewrite.VarianceInput(layer));
                values.Add(ComponentRunner.CreateFloatTensor(Component.Input(GroupNormRewrite.VarianceInput(layer)).ElementDataType, statistics.Variances[layer], [1, groups, 1]));
            }

            using var outputs = session.Run(run, names, values, outputNames);
            return read(outputs);
        }
        finally
        {
            values.ForEach(v => v.Dispose());
        }
    }

    /// <summary>
    /// The whole input brought down to at most <paramref name="side"/> blocks of <paramref name="scale"/> pixels a side
    /// (whole blocks, so an encoder's input stays a multiple of its downscale): the nearest block's pixels, then each
    /// channel shifted and scaled back to the whole input's mean and standard deviation, since GroupNorm's statistics
    /// are what the stand-in must keep.
    /// </summary>
    internal static (float[] Data, int Height, int Width) StandIn(ReadOnlySpan<float> input, int channels, int height, int width, int side, int scale)
    {
        var blocksY = height / scale;
        var blocksX = width / scale;
        if (blocksY <= side && blocksX <= side)
        {
            return (input.ToArray(), height, width);
        }

        // One factor for both axes keeps the stand-in's aspect ratio.
        var factor = Math.Max(blocksY, blocksX) / (double)side;
        var smallBlocksY = Math.Max(1, (int)Math.Round(blocksY / factor));
        var smallBlocksX = Math.Max(1, (int)Math.Round(blocksX / factor));
        int h = smallBlocksY * scale, w = smallBlocksX * scale;
        var sourceBlocksY = Enumerable.Range(0, smallBlocksY).Select(b => Math.Min(blocksY - 1, (int)((b + 0.5) * blocksY / smallBlocksY))).ToArray();
        var sourceBlocksX = Enumerable.Range(0, smallBlocksX).Select(b => Math.Min(blocksX - 1, (int)((b + 0.5) * blocksX / smallBlocksX))).ToArray();
        var result = new float[channels * h * w];
        for (var c = 0; c < channels; c++)
        {
            var plane = input.Slice(c * height * width, height * width);
            var target = result.AsSpan(c * h * w, h * w);
            for (var y = 0; y < h; y++)
            {
                var sy = sourceBlocksY[y / scale] * scale + y % scale;
                for (var x = 0; x < w; x++)
                {
                    target[y * w + x] = plane[sy * width + sourceBlocksX[x / scale] * scale + x % scale];
                }
            }

            var (mean, std) = MeanStd(plane);
            var (smallMean, smallStd) = MeanStd(target);
            var gain = smallStd > 1e-12 ? (float)(std / smallStd) : 1f;
            for (var i = 0; i < target.Length; i++)
            {
                target[i] = (float)((target[i] - smallMean) * gain + mean);
            }
        }

        return (result, h, w);
    }

    private static (double Mean, double Std) MeanStd(ReadOnlySpan<float> values)
    {
        double sum = 0, squares = 0;
        foreach (var v in values)
        {
            sum += v;
            squares += (double)v * v;
        }

        var mean = sum / values.Length;
        return (mean, Math.Sqrt(Math.Max(0, squares / values.Length - mean * mean)));
    }

    private bool TryLoad()
    {
        try
        {
            Component.Load();
            return true;
        }
        catch (GroupNormRewriteException ex)
        {
            Unavailable = ex.Message;
            return false;
        }
    }

    private static int Layers(InferenceSession session) =>
        session.OutputMetadata.Keys.Count(k => k.StartsWith("renderfarm_groupnorm_", StringComparison.Ordinal) && k.EndsWith("_own_mean", StringComparison.Ordinal));

    /// <summary>The <see cref="OnnxComponent"/> rewrite for a VAE half: throws when the graph cannot take given statistics.</summary>
    public static byte[] Rewrite(byte[] model)
    {
        var (rewritten, _, reason) = GroupNormRewrite.Rewrite(model);
        return rewritten ?? throw new GroupNormRewriteException($"GroupNorm statistics cannot be shared across tiles: {reason}.");
    }
}

/// <summary>Per GroupNorm layer, in graph order, the mean and variance of each group ([batch·groups], batch 1).</summary>
internal sealed record GroupNormStatistics(float[][] Means, float[][] Variances)
{
    public int Layers => Means.Length;
}

/// <summary>A model whose graph cannot be rewritten to take given GroupNorm statistics.</summary>
internal sealed class GroupNormRewriteException(string message) : Exception(message);
