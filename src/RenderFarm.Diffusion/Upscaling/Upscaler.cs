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
    public RgbImage Upscale(RgbImage image, TileSize? tile, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        var t = tile ?? ChooseTile(image.Width, image.Height);
        t.Validate(nameof(tile));
        var input = ToUnitPlanes(image);
        var output = TiledRunner.Run(input, 3, 1, 3, Scale, image.Height, image.Width, t, RunTile, cancellationToken);
        return FromUnitPlanes(output, image.Width * Scale, image.Height * Scale);
    }

    /// <summary>Runs the model once on a CHW tile of <paramref name="height"/>×<paramref name="width"/> values in [0, 1].</summary>
    public float[] RunTile(float[] chw, int height, int width)
    {
        var (inputName, outputName) = Names();
        var (data, shape) = ComponentRunner.RunFloat(_component, inputName, chw, [1, 3, height, width], outputName);
        if (shape.Length != 4 || shape[1] != 3 || shape[2] != (long)height * Scale || shape[3] != (long)width * Scale)
        {
            throw new ModelFormatException(
                $"Upscaler '{Name}' turned a {width}x{height} tile into [{string.Join(", ", shape)}]; its {UpscalerFolder.ConfigFile} says scale {Scale}, so [1, 3, {height * Scale}, {width * Scale}] was expected.");
        }

        return data;
    }

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
