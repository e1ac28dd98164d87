using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace RenderFarm.StepSyncBench;

/// <summary>How latent values travel between the coordinator and a participant.</summary>
internal enum WireFormat
{
    /// <summary>IEEE half precision: what the mode would send (half the bytes of fp32).</summary>
    Float16,
    /// <summary>Single precision: the control that isolates the split and blend from fp16 rounding.</summary>
    Float32,
}

/// <summary>
/// The messages of one step, as bytes that could go on a socket: a request (timestep, window indices, the windows'
/// scaled latent values) and a reply (window indices, the windows' guided noise predictions). Little-endian, as every
/// machine the farm runs on. Hand-written rather than a serializer because the payload is one contiguous block of
/// halves (<see cref="TensorPrimitives.ConvertToHalf"/>) and the point is to count exactly the bytes that travel.
/// </summary>
internal static class Wire
{
    public static int BytesPerValue(WireFormat format) => format == WireFormat.Float16 ? 2 : 4;

    /// <summary>Header: timestep (8 bytes), window count (4), then 4 bytes per window index.</summary>
    public static int HeaderLength(int windows) => 8 + 4 + 4 * windows;

    public static byte[] Allocate(int windows, int windowLength, WireFormat format) =>
        new byte[HeaderLength(windows) + windows * windowLength * BytesPerValue(format)];

    public static void WriteHeader(Span<byte> message, double timestep, IReadOnlyList<Window> windows)
    {
        BinaryPrimitives.WriteDoubleLittleEndian(message, timestep);
        BinaryPrimitives.WriteInt32LittleEndian(message[8..], windows.Count);
        for (var i = 0; i < windows.Count; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(message[(12 + 4 * i)..], windows[i].Index);
        }
    }

    public static (double Timestep, int[] WindowIndices) ReadHeader(ReadOnlySpan<byte> message)
    {
        var timestep = BinaryPrimitives.ReadDoubleLittleEndian(message);
        var count = BinaryPrimitives.ReadInt32LittleEndian(message[8..]);
        var indices = new int[count];
        for (var i = 0; i < count; i++)
        {
            indices[i] = BinaryPrimitives.ReadInt32LittleEndian(message[(12 + 4 * i)..]);
        }

        return (timestep, indices);
    }

    /// <summary>The bytes of window <paramref name="slot"/> of a message with <paramref name="windows"/> windows.</summary>
    public static Span<byte> Payload(Span<byte> message, int windows, int slot, int windowLength, WireFormat format)
    {
        var size = windowLength * BytesPerValue(format);
        return message.Slice(HeaderLength(windows) + slot * size, size);
    }

    public static void Encode(ReadOnlySpan<float> values, Span<byte> destination, WireFormat format)
    {
        if (format == WireFormat.Float16)
        {
            TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<byte, Half>(destination));
        }
        else
        {
            values.CopyTo(MemoryMarshal.Cast<byte, float>(destination));
        }
    }

    public static void Decode(ReadOnlySpan<byte> source, Span<float> values, WireFormat format)
    {
        if (format == WireFormat.Float16)
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), values);
        }
        else
        {
            MemoryMarshal.Cast<byte, float>(source).CopyTo(values);
        }
    }
}
