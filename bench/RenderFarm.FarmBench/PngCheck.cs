using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

/// <summary>What <see cref="PngCheck"/> found in a PNG.</summary>
/// <param name="Width">IHDR width.</param>
/// <param name="Height">IHDR height.</param>
/// <param name="BitDepth">IHDR bit depth.</param>
/// <param name="ColorType">IHDR colour type (2 = RGB, 6 = RGBA).</param>
/// <param name="Bytes">Length of the file.</param>
/// <param name="Chunks">Chunks read, IEND included.</param>
/// <param name="InflatedBytes">Bytes the IDAT stream inflated to: height × (1 filter byte + a row of pixels) when whole.</param>
internal sealed record PngInfo(int Width, int Height, int BitDepth, int ColorType, long Bytes, int Chunks, long InflatedBytes);

/// <summary>
/// Checks a PNG of any size while it streams past: signature, every chunk's CRC, IHDR, and that the IDAT data
/// inflates to exactly the rows IHDR promises, holding one read buffer rather than the pixels.
/// </summary>
/// <remarks>
/// Hand-written because the image libraries served here (SkiaSharp) decode whole bitmaps: a 16384² RGB image would
/// need 1 GiB of pixels just to learn that it decodes. Un-filtering the rows is not done (it cannot fail on data
/// that inflates to the right length with valid filter bytes, which are checked).
/// </remarks>
internal static class PngCheck
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static async Task<PngInfo> ReadAsync(Stream png, CancellationToken ct)
    {
        var counted = new CountingStream(png);
        var signature = new byte[8];
        await counted.ReadExactlyAsync(signature, ct);
        if (!signature.AsSpan().SequenceEqual(Signature))
            throw new InvalidDataException("Not a PNG: the signature is wrong.");

        var chunks = new ChunkReader(counted);
        var (type, ihdr) = await chunks.ReadSmallChunkAsync(ct);
        if (type != "IHDR" || ihdr.Length != 13)
            throw new InvalidDataException($"The first chunk is {type} ({ihdr.Length} bytes), not a 13-byte IHDR.");
        var width = BinaryPrimitives.ReadInt32BigEndian(ihdr);
        var height = BinaryPrimitives.ReadInt32BigEndian(ihdr.AsSpan(4));
        int bitDepth = ihdr[8], colorType = ihdr[9], interlace = ihdr[12];
        if (interlace != 0)
            throw new InvalidDataException("Interlaced PNGs are not checked.");
        var channels = colorType switch
        {
            0 => 1,
            2 => 3,
            4 => 2,
            6 => 4,
            _ => throw new InvalidDataException($"Colour type {colorType} is not checked."),
        };
        var rowBytes = 1 + (((long)width * channels * bitDepth) + 7) / 8;

        long inflated = 0;
        await using (var idat = new IdatStream(chunks))
        await using (var zlib = new ZLibStream(idat, CompressionMode.Decompress))
        {
            var buffer = new byte[1 << 20];
            int read;
            while ((read = await zlib.ReadAsync(buffer, ct)) > 0)
            {
                // Every row starts with its filter byte (0..4); a wrong one means the rows are misaligned or corrupt.
                for (var rowStart = (rowBytes - inflated % rowBytes) % rowBytes; rowStart < read; rowStart += rowBytes)
                {
                    if (buffer[rowStart] > 4)
                        throw new InvalidDataException($"Row {(inflated + rowStart) / rowBytes} has filter type {buffer[rowStart]}.");
                }

                inflated += read;
            }

            await idat.ReadToEndAsync(ct);
        }

        if (inflated != rowBytes * height)
            throw new InvalidDataException($"The image data inflates to {inflated} bytes; {width}×{height} needs {rowBytes * height}.");
        if (await counted.ReadAsync(new byte[1], ct) != 0)
            throw new InvalidDataException("Bytes follow IEND.");
        return new PngInfo(width, height, bitDepth, colorType, counted.Position, chunks.Count, inflated);
    }

    /// <summary>Reads chunk headers and CRCs; the data of large chunks streams through <see cref="ReadDataAsync"/>.</summary>
    private sealed class ChunkReader(Stream source)
    {
        private readonly byte[] _header = new byte[8];
        private readonly Crc32 _crc = new();

        public int Count { get; private set; }

        public async Task<(string Type, byte[] Data)> ReadSmallChunkAsync(CancellationToken ct)
        {
            var (type, length) = await ReadHeaderAsync(ct);
            if (length > 1 << 20)
                throw new InvalidDataException($"Chunk {type} of {length} bytes where a small one was expected.");
            var data = new byte[length];
            await ReadDataAsync(data, ct);
            await EndChunkAsync(type, ct);
            return (type, data);
        }

        public async Task<(string Type, long Length)> ReadHeaderAsync(CancellationToken ct)
        {
            await source.ReadExactlyAsync(_header, ct);
            var length = BinaryPrimitives.ReadUInt32BigEndian(_header);
            if (length > int.MaxValue)
                throw new InvalidDataException($"Chunk length {length} exceeds 2^31 - 1.");
            _crc.Reset();
            _crc.Append(_header.AsSpan(4));
            Count++;
            return (System.Text.Encoding.ASCII.GetString(_header, 4, 4), length);
        }

        public async Task ReadDataAsync(Memory<byte> data, CancellationToken ct)
        {
            await source.ReadExactlyAsync(data, ct);
            _crc.Append(data.Span);
        }

        public async Task EndChunkAsync(string type, CancellationToken ct)
        {
            var stored = new byte[4];
            await source.ReadExactlyAsync(stored, ct);
            if (BinaryPrimitives.ReadUInt32BigEndian(stored) != _crc.GetCurrentHashAsUInt32())
                throw new InvalidDataException($"CRC mismatch in chunk {Count} ({type}).");
        }
    }

    /// <summary>The concatenated data of the IDAT chunks, skipping (and checking) every other chunk up to IEND.</summary>
    private sealed class IdatStream(ChunkReader chunks) : Stream
    {
        private long _remaining;
        private string? _current;
        private bool _ended;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (_remaining == 0)
            {
                if (_ended)
                    return 0;
                if (_current is not null)
                    await chunks.EndChunkAsync(_current, cancellationToken);
                var (type, length) = await chunks.ReadHeaderAsync(cancellationToken);
                _current = type;
                if (type == "IEND")
                {
                    await chunks.EndChunkAsync(type, cancellationToken);
                    _current = null;
                    _ended = true;
                }
                else if (type != "IDAT")
                {
                    // Metadata (tEXt with the generation parameters, …): read through so its CRC is checked.
                    var skip = new byte[length];
                    await chunks.ReadDataAsync(skip, cancellationToken);
                }
                else
                {
                    _remaining = length;
                }
            }

            var take = (int)Math.Min(buffer.Length, _remaining);
            await chunks.ReadDataAsync(buffer[..take], cancellationToken);
            _remaining -= take;
            return take;
        }

        /// <summary>Reads past what the inflater left (zlib may stop before the last chunk's end) through IEND.</summary>
        public async Task ReadToEndAsync(CancellationToken ct)
        {
            var buffer = new byte[1 << 16];
            while (await ReadAsync(buffer, ct) > 0)
            {
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class CountingStream(Stream inner) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            _position += read;
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = inner.Read(buffer, offset, count);
            _position += read;
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
