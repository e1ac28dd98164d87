using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Numerics.Tensors;
using System.Text;
using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Hires;

/// <summary>
/// Writes an 8-bit RGB PNG row by row to a stream: signature, IHDR, the text chunks, IDAT chunks fed by a zlib stream
/// over filtered scanlines, IEND. Memory is two scanlines and one IDAT buffer, whatever the image size.
/// </summary>
/// <remarks>
/// Hand-written because SkiaSharp's encoder needs the whole bitmap in memory (it has no incremental API), which at
/// 16384² is 768 MiB of RGB plus Skia's RGBA copy. Every scanline uses the Up filter: one vectorised subtraction per
/// row, and good compression on photographic content whose rows resemble their neighbours.
/// </remarks>
public sealed class StreamingPngWriter : IAsyncDisposable
{
    /// <summary>IDAT payload size: large enough that chunk headers cost nothing, small enough to bound the buffer.</summary>
    public const int IdatChunkSize = 1 << 16;

    private const byte FilterUp = 2;
    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    private readonly Stream _output;
    private readonly IdatStream _idat;
    private readonly ZLibStream _zlib;
    private readonly byte[] _previous;
    private readonly byte[] _filtered;
    private readonly IReadOnlyList<KeyValuePair<string, string>> _text;
    private int _rowsWritten;
    private bool _started;
    private bool _completed;

    /// <param name="output">Where the PNG goes; written forward only (no seeking), left open.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="text">Text chunks written before the image data (keyword → text), e.g. <see cref="PngCodec.ParametersKeyword"/>.</param>
    /// <param name="level">zlib effort; <see cref="CompressionLevel.Fastest"/> keeps a 16K stitch CPU-light.</param>
    public StreamingPngWriter(Stream output, int width, int height, IReadOnlyList<KeyValuePair<string, string>>? text = null, CompressionLevel level = CompressionLevel.Fastest)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if ((long)width * 3 + 1 > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(width), width, "A scanline must fit in one array.");
        }

        _output = output;
        Width = width;
        Height = height;
        _text = text ?? [];
        _previous = new byte[width * 3];
        _filtered = new byte[width * 3 + 1];
        _filtered[0] = FilterUp;
        _idat = new IdatStream(output);
        _zlib = new ZLibStream(_idat, level, leaveOpen: true);
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Appends the next scanline (<see cref="Width"/> × 3 bytes, R G B interleaved).</summary>
    public async ValueTask WriteRowAsync(ReadOnlyMemory<byte> rgb, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (rgb.Length != Width * 3)
        {
            throw new ArgumentException($"A row is {Width * 3} bytes, got {rgb.Length}.", nameof(rgb));
        }

        if (_rowsWritten == Height)
        {
            throw new InvalidOperationException($"All {Height} rows are already written.");
        }

        await StartAsync(cancellationToken);
        // Up: each byte minus the byte above it, modulo 256 (the first row's "above" is zeros, i.e. no filter).
        TensorPrimitives.Subtract(rgb.Span, _previous, _filtered.AsSpan(1));
        rgb.Span.CopyTo(_previous);
        await _zlib.WriteAsync(_filtered, cancellationToken);
        _rowsWritten++;
    }

    /// <summary>Finishes the zlib stream and writes IEND; call once, after the last row.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        if (_rowsWritten != Height)
        {
            throw new InvalidOperationException($"{_rowsWritten} of {Height} rows were written; a PNG needs them all.");
        }

        if (_completed)
        {
            return;
        }

        await _zlib.DisposeAsync();
        await _idat.FlushChunkAsync(cancellationToken);
        await WriteChunkAsync(_output, "IEND", ReadOnlyMemory<byte>.Empty, cancellationToken);
        await _output.FlushAsync(cancellationToken);
        _completed = true;
    }

    public async ValueTask DisposeAsync()
    {
        // An abandoned writer leaves a truncated PNG behind; that is the caller's to discard (e.g. abort the upload).
        _completed = true;
        await _zlib.DisposeAsync();
    }

    private async ValueTask StartAsync(CancellationToken cancellationToken)
    {
        if (_started)
        {
            return;
        }

        _started = true;
        await _output.WriteAsync(Signature, cancellationToken);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)Width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)Height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 2;  // colour type: truecolour RGB
        // ihdr[10..12]: deflate, adaptive filtering (method 0), no interlace.
        await WriteChunkAsync(_output, "IHDR", ihdr, cancellationToken);
        foreach (var (keyword, value) in _text)
        {
            var (type, data) = TextChunk(keyword, value);
            await WriteChunkAsync(_output, type, data, cancellationToken);
        }
    }

    /// <summary>tEXt when the text is Latin-1, else iTXt (UTF-8): the same choice <see cref="PngCodec.InsertTextChunk"/> makes.</summary>
    internal static (string Type, byte[] Data) TextChunk(string keyword, string text)
    {
        var keywordBytes = Encoding.Latin1.GetBytes(keyword);
        return text.All(ch => ch <= 0xFF)
            ? ("tEXt", [.. keywordBytes, 0, .. Encoding.Latin1.GetBytes(text)])
            : ("iTXt", [.. keywordBytes, 0, 0, 0, 0, 0, .. Encoding.UTF8.GetBytes(text)]);
    }

    internal static async ValueTask WriteChunkAsync(Stream output, string type, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var header = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, header.AsSpan(4));
        var crc = new Crc32();
        crc.Append(header.AsSpan(4));
        crc.Append(data.Span);
        var checksum = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(checksum, crc.GetCurrentHashAsUInt32());
        await output.WriteAsync(header, cancellationToken);
        await output.WriteAsync(data, cancellationToken);
        await output.WriteAsync(checksum, cancellationToken);
    }

    /// <summary>The zlib stream's sink: cuts the compressed bytes into IDAT chunks of <see cref="IdatChunkSize"/>.</summary>
    private sealed class IdatStream(Stream output) : Stream
    {
        private readonly byte[] _buffer = new byte[IdatChunkSize];
        private int _count;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            // ZLibStream writes synchronously when it is disposed synchronously; keep both paths correct.
            while (!buffer.IsEmpty)
            {
                var n = Math.Min(buffer.Length, _buffer.Length - _count);
                buffer[..n].CopyTo(_buffer.AsSpan(_count));
                _count += n;
                buffer = buffer[n..];
                if (_count == _buffer.Length)
                {
                    WriteChunkAsync(output, "IDAT", _buffer, CancellationToken.None).AsTask().GetAwaiter().GetResult();
                    _count = 0;
                }
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (!buffer.IsEmpty)
            {
                var n = Math.Min(buffer.Length, _buffer.Length - _count);
                buffer[..n].CopyTo(_buffer.AsMemory(_count));
                _count += n;
                buffer = buffer[n..];
                if (_count == _buffer.Length)
                {
                    await WriteChunkAsync(output, "IDAT", _buffer, cancellationToken);
                    _count = 0;
                }
            }
        }

        public async ValueTask FlushChunkAsync(CancellationToken cancellationToken)
        {
            if (_count > 0)
            {
                await WriteChunkAsync(output, "IDAT", _buffer.AsMemory(0, _count), cancellationToken);
                _count = 0;
            }
        }

        // Nothing to flush until a chunk is full: a partial IDAT is written once, at the end.
        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
