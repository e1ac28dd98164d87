using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;

namespace RenderFarm.Diffusion.Pipelines;

/// <summary>
/// One noise prediction for every row of a step (CFG halves × images), under the render's memory strategy:
/// <list type="bullet">
/// <item>plain: one batched UNet call on the whole latent, reading and writing the bound buffers directly;</item>
/// <item>batch split: the rows in groups of <see cref="MemoryStrategy.RowsPerCall"/>, one binding (with its own
/// rows of the text conditioning) per group;</item>
/// <item>latent tiling (MultiDiffusion, Bar-Tal et al. 2023): each group runs on overlapping windows of the latent
/// and the predictions are averaged with per-window <see cref="TileBlend"/> weights, so the UNet's activations are a
/// window's, not the image's.</item>
/// </list>
/// Windows and groups are laid out and bound once in the constructor: <see cref="Run"/> allocates nothing.
/// </summary>
internal sealed class UnetRunner : IDisposable
{
    private const int Channels = 4;
    private readonly UnetBinding[] _groups;
    private readonly int[] _groupFirstRow;
    private readonly (int Y, int X, float[] Weights)[] _windows;
    private readonly int _height;
    private readonly int _width;
    private readonly int _windowHeight;
    private readonly int _windowWidth;
    private readonly float[]? _inverseWeightSum;
    private readonly bool _direct;

    public UnetRunner(Unet unet, MemoryStrategy strategy, int rows, int latentHeight, int latentWidth, PromptConditioning conditioning)
    {
        _height = latentHeight;
        _width = latentWidth;
        var tiled = strategy.Has(MemoryStrategies.LatentTiling) && strategy.LatentWindow.Count(latentHeight, latentWidth) > 1;
        var window = tiled ? strategy.LatentWindow : new TileSize(Math.Max(latentHeight, latentWidth), 0);
        _windowHeight = Math.Min(window.Size, latentHeight);
        _windowWidth = Math.Min(window.Size, latentWidth);
        var ys = window.Starts(latentHeight);
        var xs = window.Starts(latentWidth);
        _windows = [.. ys.SelectMany(y => xs.Select(x => (y, x, TileBlend.Weights(_windowHeight, _windowWidth, window.Overlap,
            top: y > 0, bottom: y + _windowHeight < latentHeight, left: x > 0, right: x + _windowWidth < latentWidth))))];

        var rowsPerCall = strategy.RowsPerCall(rows);
        var groupCount = (rows + rowsPerCall - 1) / rowsPerCall;
        _groups = new UnetBinding[groupCount];
        _groupFirstRow = new int[groupCount];
        try
        {
            for (var g = 0; g < groupCount; g++)
            {
                var first = g * rowsPerCall;
                var count = Math.Min(rowsPerCall, rows - first);
                _groupFirstRow[g] = first;
                // SDXL's size conditioning stays the whole image's in every window: MultiDiffusion denoises one image.
                _groups[g] = unet.Bind(count, _windowHeight, _windowWidth, conditioning.Slice(first, count, rows));
            }
        }
        catch
        {
            Dispose();
            throw;
        }

        _direct = groupCount == 1 && _windows.Length == 1;
        if (_direct)
        {
            Input = _groups[0].Input.Data;
            Output = _groups[0].Output.Data;
        }
        else
        {
            Input = new float[rows * Channels * latentHeight * latentWidth];
            Output = new float[Input.Length];
        }

        if (_windows.Length > 1)
        {
            var sum = new float[latentHeight * latentWidth];
            foreach (var (y0, x0, weights) in _windows)
            {
                for (var y = 0; y < _windowHeight; y++)
                {
                    var dst = sum.AsSpan((y0 + y) * latentWidth + x0, _windowWidth);
                    TensorPrimitives.Add(dst, weights.AsSpan(y * _windowWidth, _windowWidth), dst);
                }
            }

            _inverseWeightSum = new float[sum.Length];
            TensorPrimitives.Reciprocal(sum, _inverseWeightSum);
        }
    }

    /// <summary>The model input of every row, [rows, 4, h, w]: write it, then <see cref="Run"/>.</summary>
    public float[] Input { get; }

    /// <summary>The noise prediction of every row, [rows, 4, h, w], after <see cref="Run"/>.</summary>
    public float[] Output { get; }

    /// <summary>UNet calls per step (groups × windows).</summary>
    public int CallsPerStep => _groups.Length * _windows.Length;

    public void Run(double timestep, RunOptions runOptions)
    {
        if (_direct)
        {
            _groups[0].Run(timestep, runOptions);
            return;
        }

        var plane = _height * _width;
        var windowPlane = _windowHeight * _windowWidth;
        var blended = _windows.Length > 1;
        if (blended)
        {
            Array.Clear(Output);
        }

        for (var g = 0; g < _groups.Length; g++)
        {
            var binding = _groups[g];
            var groupRows = binding.Input.Data.Length / (Channels * windowPlane);
            var firstPlane = _groupFirstRow[g] * Channels;
            foreach (var (y0, x0, weights) in _windows)
            {
                var windowInput = binding.Input.Data.AsSpan();
                for (var p = 0; p < groupRows * Channels; p++)
                {
                    var source = Input.AsSpan((firstPlane + p) * plane, plane);
                    for (var y = 0; y < _windowHeight; y++)
                    {
                        source.Slice((y0 + y) * _width + x0, _windowWidth).CopyTo(windowInput.Slice(p * windowPlane + y * _windowWidth, _windowWidth));
                    }
                }

                binding.Run(timestep, runOptions);

                ReadOnlySpan<float> windowOutput = binding.Output.Data;
                for (var p = 0; p < groupRows * Channels; p++)
                {
                    var target = Output.AsSpan((firstPlane + p) * plane, plane);
                    for (var y = 0; y < _windowHeight; y++)
                    {
                        var src = windowOutput.Slice(p * windowPlane + y * _windowWidth, _windowWidth);
                        var dst = target.Slice((y0 + y) * _width + x0, _windowWidth);
                        if (blended)
                        {
                            TensorPrimitives.MultiplyAdd(src, weights.AsSpan(y * _windowWidth, _windowWidth), dst, dst);
                        }
                        else
                        {
                            src.CopyTo(dst);
                        }
                    }
                }
            }
        }

        if (blended)
        {
            for (var p = 0; p < Output.Length / plane; p++)
            {
                var target = Output.AsSpan(p * plane, plane);
                TensorPrimitives.Multiply(target, _inverseWeightSum, target);
            }
        }
    }

    public void Dispose()
    {
        foreach (var group in _groups)
        {
            group?.Dispose();
        }
    }
}
