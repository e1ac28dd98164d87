namespace RenderFarm.Diffusion.Memory;

/// <summary>
/// Blend weights for overlapping tiles and windows: 1 inside, a smoothstep ramp across each edge that borders
/// another tile, 1 up to the image's own border. Opposite ramps of two tiles that overlap by exactly the ramp sum
/// to 1 (smoothstep is point-symmetric), and every weight is positive, so normalising by the weight sum is always
/// defined.
/// </summary>
internal static class TileBlend
{
    /// <summary>Weights of a <paramref name="height"/>×<paramref name="width"/> tile, row-major.</summary>
    public static float[] Weights(int height, int width, int ramp, bool top, bool bottom, bool left, bool right)
    {
        var wy = Axis(height, ramp, top, bottom);
        var wx = Axis(width, ramp, left, right);
        var result = new float[height * width];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                result[y * width + x] = wy[y] * wx[x];
            }
        }

        return result;
    }

    /// <summary>The weights along one axis of a tile (a tile's weight is the product of its row and column weights).</summary>
    public static float[] Axis(int length, int ramp, bool rampStart, bool rampEnd)
    {
        var w = new float[length];
        for (var i = 0; i < length; i++)
        {
            var v = 1.0;
            if (rampStart && ramp > 0)
            {
                v *= Smooth((i + 0.5) / ramp);
            }

            if (rampEnd && ramp > 0)
            {
                v *= Smooth((length - i - 0.5) / ramp);
            }

            w[i] = (float)v;
        }

        return w;
    }

    private static double Smooth(double x)
    {
        x = Math.Clamp(x, 0, 1);
        return x * x * (3 - 2 * x);
    }
}

/// <summary>
/// Runs a per-tile model (the VAE) over an image too large to run at once: crops overlapping tiles laid out in latent
/// pixels, runs each, and blends the outputs with <see cref="TileBlend"/> weights. Output memory is the full image;
/// model memory is one tile's. Run as it is, each tile of a real VAE normalises with its own GroupNorm statistics;
/// <see cref="Models.SharedGroupNorm"/> runs it with statistics shared across the tiles.
/// </summary>
internal static class TiledRunner
{
    /// <summary>
    /// Tiles a CHW <c>input</c> of <c>inChannels</c> planes of (latentHeight·inScale)×(latentWidth·inScale) and
    /// returns the blended CHW output of <c>outChannels</c> planes at <c>outScale</c>; <c>run</c> maps (CHW tile,
    /// tile height, tile width in input pixels) to the tile's output.
    /// </summary>
    public static float[] Run(ReadOnlySpan<float> input, int inChannels, int inScale, int outChannels, int outScale,
        int latentHeight, int latentWidth, TileSize tile, Func<float[], int, int, float[]> run, CancellationToken cancellationToken)
    {
        var ys = tile.Starts(latentHeight);
        var xs = tile.Starts(latentWidth);
        var th = Math.Min(tile.Size, latentHeight);
        var tw = Math.Min(tile.Size, latentWidth);
        int inH = latentHeight * inScale, inW = latentWidth * inScale;
        int outH = latentHeight * outScale, outW = latentWidth * outScale;
        int tileInH = th * inScale, tileInW = tw * inScale, tileOutH = th * outScale, tileOutW = tw * outScale;

        var output = new float[outChannels * outH * outW];
        var weightSum = new float[outH * outW];
        var tileInput = new float[inChannels * tileInH * tileInW];
        foreach (var y0 in ys)
        {
            foreach (var x0 in xs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                for (var c = 0; c < inChannels; c++)
                {
                    for (var y = 0; y < tileInH; y++)
                    {
                        input.Slice(c * inH * inW + (y0 * inScale + y) * inW + x0 * inScale, tileInW)
                            .CopyTo(tileInput.AsSpan(c * tileInH * tileInW + y * tileInW, tileInW));
                    }
                }

                var tileOutput = run(tileInput, tileInH, tileInW);
                var weights = TileBlend.Weights(tileOutH, tileOutW, tile.Overlap * outScale,
                    top: y0 > 0, bottom: y0 + th < latentHeight, left: x0 > 0, right: x0 + tw < latentWidth);
                for (var y = 0; y < tileOutH; y++)
                {
                    var row = (y0 * outScale + y) * outW + x0 * outScale;
                    var w = weights.AsSpan(y * tileOutW, tileOutW);
                    var sum = weightSum.AsSpan(row, tileOutW);
                    System.Numerics.Tensors.TensorPrimitives.Add(sum, w, sum);
                    for (var c = 0; c < outChannels; c++)
                    {
                        var dst = output.AsSpan(c * outH * outW + row, tileOutW);
                        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(tileOutput.AsSpan(c * tileOutH * tileOutW + y * tileOutW, tileOutW), w, dst, dst);
                    }
                }
            }
        }

        for (var c = 0; c < outChannels; c++)
        {
            var plane = output.AsSpan(c * outH * outW, outH * outW);
            System.Numerics.Tensors.TensorPrimitives.Divide(plane, weightSum, plane);
        }

        return output;
    }
}
