using System.Globalization;
using RenderFarm.ModelGenerator.Graph;
using RenderFarm.Onnx;

namespace RenderFarm.ModelGenerator.Upscaler;

/// <summary>Options of the tiny upscaler: its scale factor (2 or 4, as Real-ESRGAN's x2 and x4 models).</summary>
public sealed record TinyUpscalerOptions(int Scale = 2)
{
    /// <summary>Throws unless <see cref="Scale"/> is 2 or 4.</summary>
    public void Validate()
    {
        if (Scale is not (2 or 4))
        {
            throw new ArgumentOutOfRangeException(nameof(Scale), Scale, "The tiny upscaler's scale is 2 or 4.");
        }
    }
}

/// <summary>
/// A super-resolution model with Real-ESRGAN's ONNX interface (<c>input</c> [1, 3, H, W] in [0, 1] → <c>output</c>
/// [1, 3, s·H, s·W], dynamic H and W) whose output has a closed form tests compute by hand: output pixel
/// (s·y + i, s·x + j) of channel c is <c>0.75·input[c, y, x] + (31.875 + 2·(i·s + j)) / 255</c>.
/// As a byte image (b/255 in, round(255·v) out) that is <c>0.75·b + 31.875 + 2·(i·s + j)</c> rounded, whose fraction is
/// always 1/8 away from one half, so float rounding in any runtime never changes a byte.
/// </summary>
public static class TinyUpscaler
{
    public const string InputName = "input";
    public const string OutputName = "output";
    public const string ModelFile = "model.onnx";
    public const string ConfigFile = "renderfarm-upscaler.json";

    /// <summary>The gain of every output pixel on its input pixel.</summary>
    public const float Gain = 0.75f;

    /// <summary>The offset, in 1/255 units, of sub-pixel (i, j) of an s×s block: 31.875 + 2·(i·s + j).</summary>
    public static double OffsetBytes(int scale, int i, int j) => 31.875 + 2 * (i * scale + j);

    /// <summary>
    /// The closed form on 8-bit RGB (row-major, 3 bytes a pixel) without ONNX: what the model's output is once
    /// converted to bytes as the engine does (b/255 in, round(255·clamp(v, 0, 1)) out). Returns the upscaled pixels.
    /// </summary>
    public static byte[] Reference(ReadOnlySpan<byte> rgb, int width, int height, int scale)
    {
        int w = width * scale, h = height * scale;
        if (rgb.Length != width * height * 3)
        {
            throw new ArgumentException($"Expected {width * height * 3} bytes for {width}x{height} RGB.", nameof(rgb));
        }

        var pixels = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                var offset = OffsetBytes(scale, y % scale, x % scale);
                for (var c = 0; c < 3; c++)
                {
                    var b = rgb[((y / scale) * width + x / scale) * 3 + c];
                    pixels[(y * w + x) * 3 + c] = (byte)Math.Clamp(Math.Round(0.75 * b + offset), 0, 255);
                }
            }
        }

        return pixels;
    }

    internal static ModelProto Model(TinyUpscalerOptions options)
    {
        options.Validate();
        var s = options.Scale;
        var g = new GraphBuilder("tiny_upscaler");
        string input = g.Input(InputName, ElementType.Float, 1, 3, "height", "width");
        // Pixel shuffle as Real-ESRGAN ends: a conv to 3·s² channels, then DepthToSpace (CRD: channel c·s² + i·s + j
        // becomes sub-pixel (i, j) of channel c). The 1×1 conv copies each input channel into its s² sub-pixels.
        var weights = new float[3 * s * s * 3];
        var bias = new float[3 * s * s];
        for (var c = 0; c < 3; c++)
        {
            for (var k = 0; k < s * s; k++)
            {
                var o = c * s * s + k;
                weights[o * 3 + c] = Gain;
                bias[o] = (float)(OffsetBytes(s, k / s, k % s) / 255.0);
            }
        }

        string w = g.Weight("conv_last.weight", weights, 3 * s * s, 3, 1, 1);
        string b = g.Weight("conv_last.bias", bias, 3 * s * s);
        string features = g.Conv(input, w, b, kernel: 1);
        string shuffled = g.Node("DepthToSpace", [features], Attr.Int("blocksize", s), Attr.Str("mode", "CRD"));
        g.Output(shuffled, OutputName, ElementType.Float, 1, 3, "height_out", "width_out");
        return g.Build(string.Create(CultureInfo.InvariantCulture,
            $"RenderFarm tiny upscaler x{s}: out[c, {s}y+i, {s}x+j] = 0.75·in[c, y, x] + (31.875 + 2·({s}i+j))/255."));
    }
}
