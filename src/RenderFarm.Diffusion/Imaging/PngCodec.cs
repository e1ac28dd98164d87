using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using SkiaSharp;

namespace RenderFarm.Diffusion.Imaging;

/// <summary>PNG encode/decode through SkiaSharp, plus the text chunks Skia's encoder does not write.</summary>
public static class PngCodec
{
    public const string ParametersKeyword = "parameters";
    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    /// <summary>Encodes <paramref name="image"/> as PNG with <paramref name="parameters"/> in a <c>parameters</c> text chunk.</summary>
    public static byte[] Encode(RgbImage image, string? parameters)
    {
        var png = Encode(image, SKEncodedImageFormat.Png, 100);
        return parameters is null ? png : InsertTextChunk(png, ParametersKeyword, parameters);
    }

    /// <summary>
    /// Encodes <paramref name="image"/> as JPEG at <paramref name="quality"/> (1–100): for previews, where a few KiB
    /// matter more than exact pixels (a noisy latent preview compresses poorly as PNG).
    /// </summary>
    public static byte[] EncodeJpeg(RgbImage image, int quality)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(quality, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(quality, 100);
        return Encode(image, SKEncodedImageFormat.Jpeg, quality);
    }

    private static byte[] Encode(RgbImage image, SKEncodedImageFormat format, int quality)
    {
        ArgumentNullException.ThrowIfNull(image);
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = image.Pixels[i];
            rgba[j + 1] = image.Pixels[i + 1];
            rgba[j + 2] = image.Pixels[i + 2];
            rgba[j + 3] = 255;
        }

        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var skImage = SKImage.FromPixelCopy(info, rgba);
        using var data = skImage.Encode(format, quality);
        return data.ToArray();
    }

    /// <summary>Decodes any image format Skia reads (PNG, JPEG, WebP) to RGB, compositing alpha over black.</summary>
    public static RgbImage Decode(ReadOnlySpan<byte> encoded)
    {
        // SKBitmap.Decode(span) throws ArgumentNullException on data no codec recognises; asking for the codec first
        // turns that into the FormatException callers report as bad input.
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data);
        using var bitmap = (codec is null ? null : SKBitmap.Decode(codec))
            ?? throw new FormatException("The data is not an image SkiaSharp can decode (PNG, JPEG or WebP expected).");
        using var rgba = bitmap.Copy(SKColorType.Rgba8888) ?? throw new FormatException("The image could not be converted to RGBA.");
        var source = rgba.GetPixelSpan();
        var pixels = new byte[rgba.Width * rgba.Height * 3];
        for (int i = 0, j = 0; j < pixels.Length; i += 4, j += 3)
        {
            var a = source[i + 3];
            pixels[j] = (byte)(source[i] * a / 255);
            pixels[j + 1] = (byte)(source[i + 1] * a / 255);
            pixels[j + 2] = (byte)(source[i + 2] * a / 255);
        }

        return new RgbImage(rgba.Width, rgba.Height, pixels);
    }

    /// <summary>
    /// Adds a text chunk right after IHDR: tEXt when the text is Latin-1 (what most readers expect), iTXt (UTF-8) otherwise,
    /// as AUTOMATIC1111 does for prompts with other scripts or emoji.
    /// </summary>
    public static byte[] InsertTextChunk(byte[] png, string keyword, string text)
    {
        EnsurePng(png);
        var latin1 = text.All(ch => ch <= 0xFF);
        var keywordBytes = Encoding.Latin1.GetBytes(keyword);
        byte[] chunkData;
        string type;
        if (latin1)
        {
            type = "tEXt";
            chunkData = [.. keywordBytes, 0, .. Encoding.Latin1.GetBytes(text)];
        }
        else
        {
            type = "iTXt";
            // keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, UTF-8 text.
            chunkData = [.. keywordBytes, 0, 0, 0, 0, 0, .. Encoding.UTF8.GetBytes(text)];
        }

        var ihdrEnd = Signature.Length + 4 + 4 + 13 + 4;
        using var output = new MemoryStream(png.Length + chunkData.Length + 12);
        output.Write(png, 0, ihdrEnd);
        WriteChunk(output, type, chunkData);
        output.Write(png, ihdrEnd, png.Length - ihdrEnd);
        return output.ToArray();
    }

    /// <summary>Reads all tEXt and iTXt chunks (keyword → text).</summary>
    public static IReadOnlyDictionary<string, string> ReadTextChunks(ReadOnlySpan<byte> png)
    {
        EnsurePng(png);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var offset = Signature.Length;
        while (offset + 12 <= png.Length)
        {
            var length = checked((int)BinaryPrimitives.ReadUInt32BigEndian(png[offset..]));
            var type = Encoding.ASCII.GetString(png.Slice(offset + 4, 4));
            var data = png.Slice(offset + 8, length);
            var nul = data.IndexOf((byte)0);
            if (nul > 0 && type == "tEXt")
            {
                result[Encoding.Latin1.GetString(data[..nul])] = Encoding.Latin1.GetString(data[(nul + 1)..]);
            }
            else if (nul > 0 && type == "iTXt" && data[nul + 1] == 0)
            {
                var rest = data[(nul + 3)..];
                var language = rest.IndexOf((byte)0);
                rest = rest[(language + 1)..];
                var translated = rest.IndexOf((byte)0);
                result[Encoding.Latin1.GetString(data[..nul])] = Encoding.UTF8.GetString(rest[(translated + 1)..]);
            }

            if (type == "IEND")
            {
                break;
            }

            offset += 12 + length;
        }

        return result;
    }

    private static void WriteChunk(Stream output, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, header[4..]);
        output.Write(header);
        output.Write(data);
        var crc = new Crc32();
        crc.Append(header[4..]);
        crc.Append(data);
        Span<byte> checksum = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(checksum, crc.GetCurrentHashAsUInt32());
        output.Write(checksum);
    }

    private static void EnsurePng(ReadOnlySpan<byte> png)
    {
        if (png.Length < Signature.Length + 25 || !png[..Signature.Length].SequenceEqual(Signature))
        {
            throw new FormatException("Not a PNG file.");
        }
    }
}
