using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace RenderFarm.Coordinator.Tests.Infrastructure;

/// <summary>A small, valid PNG built by hand (the coordinator only checks structure, but the bytes should be real).</summary>
internal static class TestPng
{
    public static byte[] Bytes { get; } = Build(2, 2);

    public static string Base64 { get; } = Convert.ToBase64String(Bytes);

    /// <summary>The same PNG without its IEND chunk.</summary>
    public static string TruncatedBase64 { get; } = Convert.ToBase64String(Bytes.AsSpan(0, Bytes.Length - 12).ToArray());

    private static byte[] Build(int width, int height)
    {
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        Chunk(png, "IHDR", ihdr);

        var raw = new byte[height * (1 + width * 3)];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width * 3; x++)
            {
                raw[y * (1 + width * 3) + 1 + x] = (byte)(40 * (x + y));
            }
        }

        using var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            z.Write(raw);
        }

        Chunk(png, "IDAT", compressed.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(four, data.Length);
        png.Write(four);
        var typeBytes = Encoding.ASCII.GetBytes(type);
        png.Write(typeBytes);
        png.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(four, Crc32([.. typeBytes, .. data]));
        png.Write(four);
    }

    private static uint Crc32(byte[] bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
            }
        }

        return ~crc;
    }
}
