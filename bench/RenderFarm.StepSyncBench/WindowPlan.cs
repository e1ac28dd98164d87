using System.Numerics.Tensors;
using RenderFarm.Diffusion.Memory;

namespace RenderFarm.StepSyncBench;

/// <summary>One latent window: its place in the latent and its blend weights (window-sized, row-major).</summary>
internal sealed record Window(int Index, int Y, int X, float[] Weights);

/// <summary>
/// The engine's MultiDiffusion layout (<see cref="TileSize.Starts"/> and <see cref="TileBlend"/>, exactly as
/// <c>UnetRunner</c> lays its windows out), with the three operations a step-synchronous coordinator needs: cut a
/// window out of the latent, add a window's prediction into the blend, and normalise the blend by the weight sum.
/// </summary>
internal sealed class WindowPlan
{
    public const int Channels = 4;
    private readonly float[] _inverseWeightSum;

    public WindowPlan(int latentHeight, int latentWidth, TileSize window)
    {
        Height = latentHeight;
        Width = latentWidth;
        WindowHeight = Math.Min(window.Size, latentHeight);
        WindowWidth = Math.Min(window.Size, latentWidth);
        var ys = window.Starts(latentHeight);
        var xs = window.Starts(latentWidth);
        Windows = [.. ys.SelectMany(y => xs.Select(x => (y, x))).Select((p, i) => new Window(i, p.y, p.x,
            TileBlend.Weights(WindowHeight, WindowWidth, window.Overlap,
                top: p.y > 0, bottom: p.y + WindowHeight < latentHeight, left: p.x > 0, right: p.x + WindowWidth < latentWidth)))];

        var sum = new float[latentHeight * latentWidth];
        foreach (var w in Windows)
        {
            for (var y = 0; y < WindowHeight; y++)
            {
                var dst = sum.AsSpan((w.Y + y) * latentWidth + w.X, WindowWidth);
                TensorPrimitives.Add(dst, w.Weights.AsSpan(y * WindowWidth, WindowWidth), dst);
            }
        }

        _inverseWeightSum = new float[sum.Length];
        TensorPrimitives.Reciprocal(sum, _inverseWeightSum);
    }

    public int Height { get; }
    public int Width { get; }
    public int WindowHeight { get; }
    public int WindowWidth { get; }
    public IReadOnlyList<Window> Windows { get; }

    /// <summary>Values in one window: 4 planes of WindowHeight × WindowWidth.</summary>
    public int WindowLength => Channels * WindowHeight * WindowWidth;

    /// <summary>Copies <paramref name="window"/>'s 4 planes out of a CHW latent.</summary>
    public void Extract(ReadOnlySpan<float> latent, Window window, Span<float> destination)
    {
        var plane = Height * Width;
        var windowPlane = WindowHeight * WindowWidth;
        for (var c = 0; c < Channels; c++)
        {
            for (var y = 0; y < WindowHeight; y++)
            {
                latent.Slice(c * plane + (window.Y + y) * Width + window.X, WindowWidth)
                    .CopyTo(destination.Slice(c * windowPlane + y * WindowWidth, WindowWidth));
            }
        }
    }

    /// <summary>Adds a window's prediction, times its weights, into a CHW blend (cleared by the caller each step).</summary>
    public void Accumulate(ReadOnlySpan<float> prediction, Window window, Span<float> blend)
    {
        var plane = Height * Width;
        var windowPlane = WindowHeight * WindowWidth;
        for (var c = 0; c < Channels; c++)
        {
            for (var y = 0; y < WindowHeight; y++)
            {
                var dst = blend.Slice(c * plane + (window.Y + y) * Width + window.X, WindowWidth);
                TensorPrimitives.MultiplyAdd(prediction.Slice(c * windowPlane + y * WindowWidth, WindowWidth),
                    window.Weights.AsSpan(y * WindowWidth, WindowWidth), dst, dst);
            }
        }
    }

    /// <summary>Divides the accumulated blend by the weight sum at each latent pixel.</summary>
    public void Normalise(Span<float> blend)
    {
        var plane = Height * Width;
        for (var c = 0; c < Channels; c++)
        {
            var target = blend.Slice(c * plane, plane);
            TensorPrimitives.Multiply(target, _inverseWeightSum, target);
        }
    }
}
