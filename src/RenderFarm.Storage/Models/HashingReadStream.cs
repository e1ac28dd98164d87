using System.Security.Cryptography;

namespace RenderFarm.Storage.Models;

/// <summary>
/// Passes a file's bytes to an uploader while hashing them, so a multi-GB model file is read once and never held
/// in memory. Hand-written because the BCL's <c>CryptoStream</c> cannot seek or report a length, and the stores need
/// the length to upload in right-sized parts without spooling.
/// </summary>
/// <remarks>
/// The hash is only right if every byte passed exactly once, in order: moving the position anywhere but where it is
/// throws, and the caller compares <see cref="BytesRead"/> with the length it expected.
/// </remarks>
internal sealed class HashingReadStream(Stream inner) : Stream
{
    private readonly IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long BytesRead { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => inner.CanSeek;
    public override bool CanWrite => false;
    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => Seek(value, SeekOrigin.Begin);
    }

    /// <summary>The SHA-256 of the bytes read so far, as lowercase hex; call once, after the last read.</summary>
    public string FinishHash() => Convert.ToHexStringLower(hash.GetHashAndReset());

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        Hash(buffer[..read]);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Hash(buffer.Span[..read]);
        return read;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => inner.Position + offset,
            _ => inner.Length + offset,
        };
        if (target != inner.Position)
        {
            throw new NotSupportedException("A hashing stream is read once from start to end; moving its position would corrupt the hash.");
        }

        return target;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            hash.Dispose();
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Hash(ReadOnlySpan<byte> bytes)
    {
        hash.AppendData(bytes);
        BytesRead += bytes.Length;
    }
}
