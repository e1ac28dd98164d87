using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using RenderFarm.Coordinator.Tests.Infrastructure;

namespace RenderFarm.Coordinator.Tests.Fuzz;

/// <summary>PNGs built to hurt a decoder: tiny files that declare or inflate to enormous images.</summary>
internal static class HostileImages
{
    /// <summary>The 2×2 test PNG with its header rewritten to declare <paramref name="width"/>×<paramref name="height"/> (CRC kept valid).</summary>
    public static byte[] Declaring(int width, int height)
    {
        var png = TestPng.Bytes.ToArray();
        // Signature (8) + length (4) + "IHDR" (4): the width and height follow; the CRC covers type and data (17 bytes).
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), height);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32.HashToUInt32(png.AsSpan(12, 17)));
        return png;
    }

    /// <summary>A real decompression bomb: a well-formed 8192×8192 RGB PNG of zeros, about 200 MB inflated from a few hundred KB.</summary>
    public static byte[] Bomb => LazyBomb.Value;

    private static readonly Lazy<byte[]> LazyBomb = new(() => BuildZeros(8192, 8192));

    private static byte[] BuildZeros(int width, int height)
    {
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        Chunk(png, "IHDR"u8, ihdr);
        using var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            var row = new byte[1 + width * 3];
            for (var y = 0; y < height; y++)
            {
                z.Write(row);
            }
        }

        Chunk(png, "IDAT"u8, compressed.ToArray());
        Chunk(png, "IEND"u8, []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, ReadOnlySpan<byte> type, byte[] data)
    {
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(four, data.Length);
        png.Write(four);
        png.Write(type);
        png.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(four, Crc32.HashToUInt32([.. type, .. data]));
        png.Write(four);
    }
}
