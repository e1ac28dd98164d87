using System.Diagnostics;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using Xunit.Abstractions;
using static RenderFarm.Diffusion.Tests.Hires.HiresTestKit;

namespace RenderFarm.Diffusion.Tests.Hires;

/// <summary>Alone in its collection: it measures the heap, which tests running beside it would inflate.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasurementCollection
{
    public const string Name = "memory measurement";
}

[Collection(MemoryMeasurementCollection.Name)]
public sealed class LargeStitchTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_16384_square_stitch_streams_in_memory_far_below_the_image_size()
    {
        const int Side = 16384;
        var layout = Layout(Side, Side, 512, 64);
        var imageBytes = (long)Side * Side * 3;
        var source = new SyntheticTiles(layout);
        var sink = new CountingStream();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        long peakLive = 0;
        var samples = 0;
        var progress = new TileStitcherTests.Inline<StitchProgress>(p =>
        {
            // Live heap (after a full collection) every 16 bands: what the stitch really holds, not garbage awaiting a GC.
            if (p.RowsWritten % (16 * TileStitcher.BandHeight) == 0)
            {
                peakLive = Math.Max(peakLive, GC.GetTotalMemory(forceFullCollection: true) - before);
                samples++;
            }
        });

        await TileStitcher.StitchAsync(layout, source, sink, "a 16K test", progress, CancellationToken.None);

        using var process = Process.GetCurrentProcess();
        output.WriteLine($"{layout.Tiles.Count} tiles, RGB image {imageBytes / (1 << 20)} MiB, PNG {sink.Length / (1 << 20)} MiB; " +
            $"peak live heap during the stitch {peakLive / (1 << 20)} MiB over {samples} samples; process peak working set {process.PeakWorkingSet64 / (1 << 20)} MiB");
        source.Served.ShouldBe(layout.Tiles.Count);
        sink.Length.ShouldBeGreaterThan(0);
        samples.ShouldBe(Side / (16 * TileStitcher.BandHeight));
        // Two rows of 512-px tiles across 16384 px are ~48 MiB; the whole image would be 768 MiB.
        peakLive.ShouldBeLessThan(imageBytes / 8);
        process.PeakWorkingSet64.ShouldBeLessThan(imageBytes);
    }

    /// <summary>Tiles made on request (a flat colour per tile), so the test itself holds no image.</summary>
    private sealed class SyntheticTiles(HiresLayout layout) : ITileSource
    {
        public int Served { get; private set; }

        public ValueTask<RgbImage> GetTileAsync(int tileIndex, CancellationToken cancellationToken)
        {
            var b = layout.Tiles[tileIndex].Bounds;
            var pixels = new byte[b.Width * b.Height * 3];
            Array.Fill(pixels, (byte)(tileIndex * 37));
            Served++;
            return ValueTask.FromResult(new RgbImage(b.Width, b.Height, pixels));
        }
    }

    /// <summary>Where an upload would go: counts bytes, keeps none.</summary>
    private sealed class CountingStream : Stream
    {
        private long _length;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _length += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _length += buffer.Length;
            return ValueTask.CompletedTask;
        }
    }
}
