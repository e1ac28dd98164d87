using System.Globalization;
using RenderFarm.Diffusion.Imaging;
using SkiaSharp;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>
/// Reads the images A1111 clients send: base64, with or without a data URL prefix of any image type, in PNG, JPEG or
/// WebP (A1111 opens whatever PIL reads). The farm's job API takes PNG, so other formats, and masks to invert, are
/// re-encoded here with the engine's codec; a PNG that needs no change passes through byte for byte.
/// </summary>
internal static class Automatic1111Images
{
    /// <summary>
    /// Largest image decoded here (a 16-megapixel photo): decoding costs 4 bytes a pixel, so a crafted header must not
    /// make the coordinator allocate gigabytes. PNGs passed through are checked by the job API's own header rules.
    /// </summary>
    public const long MaxDecodedPixels = 4096L * 4096L;

    private static ReadOnlySpan<byte> PngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>The bytes of a base64 image, without any <c>data:…;base64,</c> prefix; null with a reason when it is not base64.</summary>
    public static byte[]? TryDecodeBase64(string text, out string problem)
    {
        var payload = text.AsSpan().Trim();
        if (payload.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            var comma = payload.IndexOf(',');
            payload = comma < 0 ? [] : payload[(comma + 1)..];
        }

        try
        {
            problem = "";
            return Convert.FromBase64String(payload.ToString());
        }
        catch (FormatException)
        {
            problem = "is not valid base64; send the image file's bytes base64-encoded, optionally as a data URL (data:image/png;base64,…).";
            return null;
        }
    }

    public static bool IsPng(ReadOnlySpan<byte> bytes) => bytes.StartsWith(PngSignature);

    /// <summary>
    /// The image as base64 PNG for the job API; with <paramref name="invert"/>, black and white swapped (A1111's
    /// <c>inpainting_mask_invert</c>). Null with a reason when it is not an image the farm can read.
    /// </summary>
    public static string? TryToPngBase64(string text, bool invert, out string problem)
    {
        var bytes = TryDecodeBase64(text, out problem);
        if (bytes is null)
        {
            return null;
        }

        if (!invert && IsPng(bytes))
        {
            return Convert.ToBase64String(bytes);
        }

        using (var data = SKData.CreateCopy(bytes))
        using (var codec = SKCodec.Create(data))
        {
            if (codec is null)
            {
                problem = "is not an image this farm can read; send PNG, JPEG or WebP.";
                return null;
            }

            var pixels = (long)codec.Info.Width * codec.Info.Height;
            if (pixels > MaxDecodedPixels)
            {
                problem = string.Create(CultureInfo.InvariantCulture,
                    $"is {codec.Info.Width}×{codec.Info.Height} pixels; send at most {MaxDecodedPixels} pixels (it is resized to width × height anyway).");
                return null;
            }
        }

        RgbImage image;
        try
        {
            image = PngCodec.Decode(bytes);
        }
        catch (FormatException)
        {
            problem = "could not be decoded; send an undamaged PNG, JPEG or WebP.";
            return null;
        }

        if (invert)
        {
            var p = image.Pixels;
            for (var i = 0; i < p.Length; i++)
            {
                p[i] = (byte)(255 - p[i]);
            }
        }

        problem = "";
        return Convert.ToBase64String(PngCodec.Encode(image, parameters: null));
    }
}
