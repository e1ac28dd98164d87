using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;

namespace RenderFarm.Diffusion.Upscaling;

/// <summary>
/// Runs a super-resolution model (<see cref="UpscalerFolder"/>) over images of any size: in overlapping tiles of input
/// pixels, blended with <see cref="TileBlend"/> weights as the tiled VAE is, so model memory is one tile's. The tile
/// comes from <see cref="UpscalePlanner"/> under a memory budget, or is given.
/// </summary>
public sealed class Upscaler : IDisposable
{
    /// <summary>The tile used when there is neither a budget nor a profile: 192 input pixels, as common SD front ends tile Real-ESRGAN.</summary>
    public static TileSize DefaultTile { get; } = UpscalePlanner.Tile(192);

    private readonly OnnxComponent _component;
    private string? _input;
    private string? _output;

    public Upscaler(UpscalerFolder folder, ExecutionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        Folder = folder;
        Options = options ?? ExecutionOptions.Default;
        // Names are read from the session: Real-ESRGAN exports name their tensors differently (input/output, image/...).
        _component = new OnnxComponent(folder.ModelPath, Options, [], []);
    }

    public UpscalerFolder Folder { get; }
    public ExecutionOptions Options { get; }
    public int Scale => Folder.Scale;
    public string Name => Folder.Name;

    /// <summary>
    /// The tile for an input of <paramref name="width"/>×<paramref name="height"/>: the planner's choice under the
    /// options' memory budget when the folder has a profile, else <see cref="DefaultTile"/>.
    /// </summary>
    /// <exception cref="MemoryBudgetExceededException">Not even the smallest tile fits the budget.</exception>
    public TileSize ChooseTile(int width, int height)
    {
        if (Options.MemoryBudgetBytes is not { } budget || Folder.Memory is not { } profile)
        {
            return DefaultTile;
        }

        var plan = new UpscalePlanner(profile).Plan(new UpscaleShape(width, height, Scale), budget);
        return plan.Tile ?? throw new MemoryBudgetExceededException($"Upscaler '{Name}': {plan.Reason}.");
    }

    /// <summary>Upscales <paramref name="image"/> by <see cref="Scale"/> in tiles of <paramref name="tile"/> (chosen by <see cref="ChooseTile"/> when null).</summary>
    /// <remarks>
    /// Hand-written rather than <c>TiledRunner</c> (the VAE's): every buffer is allocated once per image — the tile's
    /// input is converted from the image's bytes, the model's output is read where ONNX Runtime put it, blend weights
    /// are a row and a column — so the managed heap holds the output planes and one tile, which is what
    /// <see cref="UpscalePlanner.HostBytes"/> counts, and not a tile's garbage per tile until the next collection.
    /// </remarks>
    public RgbImage Upscale(RgbImage image, TileSize? tile, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        var t = tile ?? ChooseTile(image.Width, image.Height);
        if (t.Size < 1 || t.Overlap < 0 || (t.Overlap >= t.Size && t.Size < Math.Max(image.Width, image.Height)))
        {
            throw new ArgumentOutOfRangeException(nameof(tile), t, $"A tile needs a side of at least 1 and an overlap in [0, side) (got {t.Size}/{t.Overlap}).");
        }

        int width = image.Width, height = image.Height, s = Scale;
        var ys = t.Starts(height);
        var xs = t.Starts(width);
        int th = Math.Min(t.Size, height), tw = Math.Min(t.Size, width);
        int outW = width * s, outH = height * s, tileOutW = tw * s, tileOutH = th * s;
        var output = new float[3 * outW * outH];
        var weightSum = new float[outW * outH];
        var tileInput = new float[3 * th * tw];
        var pixels = image.Pixels;
        foreach (var y0 in ys)
        {
            foreach (var x0 in xs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                for (var y = 0; y < th; y++)
                {
                    var row = ((y0 + y) * width + x0) * 3;
                    for (var x = 0; x < tw; x++)
                    {
                        for (var c = 0; c < 3; c++)
                        {
                            tileInput[c * th * tw + y * tw + x] = pixels[row + x * 3 + c] / 255f;
                        }
                    }
                }

                var ramp = t.Overlap * s;
                var wy = TileBlend.Axis(tileOutH, ramp, y0 > 0, y0 + th < height);
                var wx = TileBlend.Axis(tileOutW, ramp, x0 > 0, x0 + tw < width);
                Run(tileInput, th, tw, tileOut =>
                {
                    for (var y = 0; y < tileOutH; y++)
                    {
                        var row = (y0 * s + y) * outW + x0 * s;
                        for (var x = 0; x < tileOutW; x++)
                        {
                            var w = wy[y] * wx[x];
                            weightSum[row + x] += w;
                            for (var c = 0; c < 3; c++)
                            {
                                output[c * outW * outH + row + x] += w * tileOut[c * tileOutH * tileOutW + y * tileOutW + x];
                            }
                        }
                    }
                });
            }
        }

        for (var c = 0; c < 3; c++)
        {
            var plane = output.AsSpan(c * outW * outH, outW * outH);
            System.Numerics.Tensors.TensorPrimitives.Divide(plane, weightSum, plane);
        }

        return FromUnitPlanes(output, outW, outH);
    }

    /// <summary>Runs the model once on a CHW tile of <paramref name="height"/>×<paramref name="width"/> values in [0, 1]; returns a copy of its output.</summary>
    public float[] RunTile(float[] chw, int height, int width)
    {
        float[]? result = null;
        Run(chw, height, width, output => result = output.ToArray());
        return result!;
    }

    /// <summary>One model call whose output is only looked at where ONNX Runtime put it (calibration: no managed copy).</summary>
    internal void RunTileInPlace(float[] chw, int height, int width) => Run(chw, height, width, _ => { });

    /// <summary>One model call; <paramref name="read"/> sees the output where ONNX Runtime put it (float32) or converted once (float16).</summary>
    private void Run(float[] chw, int height, int width, ReadOnlySpanAction read)
    {
        ArgumentNullException.ThrowIfNull(chw);
        var (inputName, outputName) = Names();
        var session = _component.Session;
        long[] shape = [1, 3, height, width];
        using var input = session.InputMetadata[inputName].ElementDataType == TensorElementType.Float16
            ? ComponentRunner.CreateFloatTensor(TensorElementType.Float16, chw.AsSpan(0, 3 * height * width), shape)
            : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, chw.AsMemory(0, 3 * height * width), shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, [inputName], [input], [outputName]);
        var info = outputs[0].GetTensorTypeAndShape();
        var outShape = info.Shape;
        if (outShape.Length != 4 || outShape[1] != 3 || outShape[2] != (long)height * Scale || outShape[3] != (long)width * Scale)
        {
            throw new ModelFormatException(
                $"Upscaler '{Name}' turned a {width}x{height} tile into [{string.Join(", ", outShape)}]; its {UpscalerFolder.ConfigFile} says scale {Scale}, so [1, 3, {height * Scale}, {width * Scale}] was expected.");
        }

        if (info.ElementDataType == TensorElementType.Float)
        {
            read(outputs[0].GetTensorDataAsSpan<float>());
        }
        else
        {
            read(ComponentRunner.ToFloat(outputs[0]).Data);
        }
    }

    private delegate void ReadOnlySpanAction(ReadOnlySpan<float> values);

    public void Dispose() => _component.Dispose();

    private (string Input, string Output) Names()
    {
        if (_input is not null && _output is not null)
        {
            return (_input, _output);
        }

        var session = _component.Session;
        if (session.InputMetadata.Count != 1 || session.OutputMetadata.Count < 1)
        {
            throw new ModelFormatException($"Upscaler '{Name}' must have one image input and an image output (it has inputs {string.Join(", ", session.InputMetadata.Keys)}).");
        }

        var input = session.InputMetadata.Single();
        var output = session.OutputMetadata.First();
        if (input.Value.Dimensions.Length != 4 || output.Value.Dimensions.Length != 4
            || !TensorRequirement.FloatingPoint.Contains(input.Value.ElementDataType) || !TensorRequirement.FloatingPoint.Contains(output.Value.ElementDataType))
        {
            throw new ModelFormatException($"Upscaler '{Name}': input '{input.Key}' and output '{output.Key}' must be float images of rank 4 ([1, 3, H, W]).");
        }

        (_input, _output) = (input.Key, output.Key);
        return (_input, _output);
    }

    /// <summary>Planar CHW values in [0, 1] (b / 255), Real-ESRGAN's input range.</summary>
    public static float[] ToUnitPlanes(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var plane = image.Width * image.Height;
        var chw = new float[plane * 3];
        var pixels = image.Pixels;
        for (var i = 0; i < plane; i++)
        {
            for (var c = 0; c < 3; c++)
            {
                chw[c * plane + i] = pixels[i * 3 + c] / 255f;
            }
        }

        return chw;
    }

    /// <summary>Bytes from planar values in [0, 1]: round(255·clamp(v, 0, 1)), as Real-ESRGAN's inference script.</summary>
    public static RgbImage FromUnitPlanes(ReadOnlySpan<float> chw, int width, int height)
    {
        var plane = width * height;
        var pixels = new byte[plane * 3];
        for (var c = 0; c < 3; c++)
        {
            var source = chw.Slice(c * plane, plane);
            for (var i = 0; i < plane; i++)
            {
                pixels[i * 3 + c] = (byte)MathF.Round(Math.Clamp(source[i], 0f, 1f) * 255f, MidpointRounding.ToEven);
            }
        }

        return new RgbImage(width, height, pixels);
    }
}
