using System.CommandLine;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Watermarking;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm watermark decode IMG</c>: reads the invisible watermark <c>render --watermark</c> embeds.</summary>
internal static class WatermarkCommand
{
    public static Command Create()
    {
        var image = new Argument<string>("image") { Description = "A PNG, JPEG or WebP image." };
        var decode = new Command("decode", "Print the payload of the image's invisible watermark (dwtDct, as invisible-watermark embeds it); exit 1 when it has none.") { image };
        decode.SetAction(result =>
        {
            var path = result.GetRequiredValue(image);
            RgbImage pixels;
            try
            {
                pixels = PngCodec.Decode(File.ReadAllBytes(path));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
            {
                return result.Fail(ExitCodes.InvalidInput, $"'{path}': {ex.Message}");
            }

            if (DwtDctWatermark.SizeProblem(pixels.Width, pixels.Height) is { } tooSmall)
            {
                return result.Fail(ExitCodes.InvalidInput, $"'{path}': {tooSmall}");
            }

            if (DwtDctWatermark.Decode(pixels) is not { } reading)
            {
                result.Error().WriteLine($"no watermark found in '{path}'.");
                return ExitCodes.Failure;
            }

            result.Out().WriteLine(reading.Text);
            return ExitCodes.Success;
        });

        return new Command("watermark", "Invisible watermarks.") { decode };
    }

    /// <summary>The payload bytes of <c>--watermark TEXT</c> (UTF-8), or why it cannot be embedded.</summary>
    public static byte[]? Payload(string? text, int width, int height, out string? problem)
    {
        problem = null;
        if (text is null)
        {
            return null;
        }

        var payload = System.Text.Encoding.UTF8.GetBytes(text);
        problem = DwtDctWatermark.PayloadProblem(payload) ?? DwtDctWatermark.SizeProblem(width, height);
        return payload;
    }
}
