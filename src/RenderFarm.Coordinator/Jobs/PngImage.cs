using System.Buffers.Binary;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>
/// Decodes an image a client sent as base64 and checks that it is a PNG, without decoding pixels: the
/// signature, a well-formed IHDR with a sane size, and an IEND at the end. A worker decodes it fully; this
/// rejects the malformed uploads that would otherwise only fail there, minutes later.
/// </summary>
internal static class PngImage
{
    private const string DataUrlPrefix = "data:image/png;base64,";
    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private static ReadOnlySpan<byte> Iend => [0, 0, 0, 0, (byte)'I', (byte)'E', (byte)'N', (byte)'D', 0xAE, 0x42, 0x60, 0x82];

    /// <summary>Largest side we accept; far above the pixel limit, so only absurd headers are refused here.</summary>
    private const int MaxSide = 1 << 16;

    public static bool TryDecode(string base64, out byte[] png, out int width, out int height, out string problem)
    {
        png = [];
        width = height = 0;
        var text = base64.StartsWith(DataUrlPrefix, StringComparison.OrdinalIgnoreCase) ? base64[DataUrlPrefix.Length..] : base64;
        try
        {
            png = Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            problem = "is not valid base64; send the PNG file's bytes base64-encoded (optionally as a data:image/png;base64, URL).";
            return false;
        }

        // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC) + IEND (12).
        if (png.Length < 8 + 25 + 12 || !png.AsSpan(0, 8).SequenceEqual(Signature))
        {
            problem = "is not a PNG image (the PNG signature is missing); send a PNG file.";
            return false;
        }

        var ihdr = png.AsSpan(8);
        if (BinaryPrimitives.ReadUInt32BigEndian(ihdr) != 13 || !ihdr.Slice(4, 4).SequenceEqual("IHDR"u8))
        {
            problem = "is a damaged PNG (its header chunk is missing or malformed); re-export the image.";
            return false;
        }

        var w = BinaryPrimitives.ReadUInt32BigEndian(ihdr[8..]);
        var h = BinaryPrimitives.ReadUInt32BigEndian(ihdr[12..]);
        if (w is 0 or > MaxSide || h is 0 or > MaxSide)
        {
            problem = $"is a PNG of {w}×{h} pixels; send an image between 1 and {MaxSide} pixels on each side.";
            return false;
        }

        if (!png.AsSpan(png.Length - Iend.Length).SequenceEqual(Iend))
        {
            problem = "is a truncated PNG (it does not end with the IEND chunk); send the whole file.";
            return false;
        }

        width = (int)w;
        height = (int)h;
        problem = string.Empty;
        return true;
    }
}
