using System.Buffers.Binary;
using System.Text;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Storage;
using RenderFarm.Worker.Rendering;
using Xunit.Abstractions;

namespace RenderFarm.Worker.Tests;

/// <summary>Alone in its collection: it measures the heap, which tests running beside it would inflate.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HiresMemoryMeasurementCollection
{
    public const string Name = "hires stitch memory measurement";
}

[Collection(HiresMemoryMeasurementCollection.Name)]
public sealed class HiresStitchStreamingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_4096_square_stitch_streams_into_the_local_store_holding_far_less_than_the_image()
    {
        const int Side = 4096;
        using var folder = new TempFolder();
        var store = new LocalFolderArtifactStore(folder.Path);
        var job = new HiresTestJob(Side, Side, 256, 32, 512, 512);
        var layout = job.Layout();
        // A few distinct tiles, stored under every key: the test itself must not hold anything image-sized.
        var distinct = Enumerable.Range(0, 4).Select(s => PngCodec.Encode(HiresImages.Picture(256, 256, s), null)).ToArray();
        foreach (var t in layout.Tiles)
        {
            await HiresImages.PutAsync(store, job.TileKey(t.Index), distinct[t.Index % distinct.Length]);
        }

        await HiresImages.PutAsync(store, job.BaseKey, PngCodec.Encode(HiresImages.Picture(512, 512, 9), null));
        var imageBytes = (long)Side * Side * 3;
        var before = GC.GetTotalMemory(forceFullCollection: true);
        long peakLive = 0;
        var samples = 0;
        var progress = new InlineProgress(step =>
        {
            // Live heap after a full collection every 8 bands: what the stitch and upload hold, not garbage awaiting a GC.
            if (step.Step % (8 * TileStitcher.BandHeight) == 0)
            {
                peakLive = Math.Max(peakLive, GC.GetTotalMemory(forceFullCollection: true) - before);
                samples++;
            }
        });

        await new HiresStitchRenderer(store).StitchAsync(job.Stitch, progress, CancellationToken.None);

        var file = new FileInfo(Path.Combine(folder.Path, job.FinalKey));
        output.WriteLine($"{layout.Tiles.Count} tiles, RGB image {imageBytes >> 20} MiB, PNG {file.Length >> 20} MiB; peak live heap {peakLive / (1 << 20)} MiB over {samples} samples");
        samples.ShouldBe(Side / (8 * TileStitcher.BandHeight));
        // Two rows of 256-px tiles across 4096 px are ~6 MiB (plus the pipe's bounded buffer); the image is 48 MiB.
        peakLive.ShouldBeLessThan(imageBytes / 4);
        var head = new byte[33 + 64];
        await using (var stream = file.OpenRead())
        {
            await stream.ReadExactlyAsync(head);
        }

        (BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(20))).ShouldBe((Side, Side));
        Encoding.Latin1.GetString(head, 37, 4).ShouldBe("tEXt");
        Encoding.Latin1.GetString(head, 41, 10).ShouldBe(PngCodec.ParametersKeyword);
    }

    private sealed class InlineProgress(Action<RenderStep> report) : IProgress<RenderStep>
    {
        public void Report(RenderStep value) => report(value);
    }
}

/// <summary>The stitch against the real S3 service (Swift): the pipe's unknown-length stream through the S3 store.</summary>
public sealed class HiresStitchS3Tests
{
    [Fact]
    public async Task A_stitch_streamed_into_S3_stores_exactly_the_in_memory_png()
    {
        var services = ServiceSettings.Load();
        using var store = new S3ArtifactStore(new StorageOptions
        {
            Endpoint = services[ServiceSettings.S3Endpoint],
            AccessKey = services["RENDERFARM_S3_ACCESS_KEY"],
            SecretKey = services["RENDERFARM_S3_SECRET_KEY"],
            Bucket = services.GetValueOrDefault("RENDERFARM_S3_BUCKET") ?? "renderfarm",
            Secure = services.GetValueOrDefault("RENDERFARM_S3_SECURE") is "true" or "1",
        });
        // Noise barely compresses: a PNG of a few MiB. (Multipart uploads of unknown length: RenderFarm.Storage.Tests.)
        var job = new HiresTestJob(1024, 768, 512, 64, 256, 192);
        var layout = job.Layout();
        var tiles = layout.Tiles.Select(t => Noise(t.Bounds.Width, t.Bounds.Height, t.Index)).ToArray();
        try
        {
            foreach (var t in layout.Tiles)
            {
                await HiresImages.PutAsync(store, job.TileKey(t.Index), PngCodec.Encode(tiles[t.Index], null));
            }

            await HiresImages.PutAsync(store, job.BaseKey, PngCodec.Encode(HiresImages.Picture(256, 192, 1), null));

            await new HiresStitchRenderer(store).StitchAsync(job.Stitch, null, CancellationToken.None);

            using var expected = new MemoryStream();
            var parameters = HiresPipeline.Parameters(job.Request(), TestItems.Model, 256, 192);
            await TileStitcher.StitchAsync(layout, new Tiles(tiles), expected, parameters, null, CancellationToken.None);
            expected.Length.ShouldBeGreaterThan(2L << 20);
            (await HiresImages.ReadAsync(store, job.FinalKey)).ShouldBe(expected.ToArray());
        }
        finally
        {
            await foreach (var info in store.ListAsync(job.Prefix, CancellationToken.None))
            {
                await store.DeleteAsync(info.Key, CancellationToken.None);
            }
        }
    }

    private static RgbImage Noise(int width, int height, int seed)
    {
        var pixels = new byte[width * height * 3];
        new Random(seed).NextBytes(pixels);
        return new RgbImage(width, height, pixels);
    }

    private sealed class Tiles(IReadOnlyList<RgbImage> tiles) : ITileSource
    {
        public ValueTask<RgbImage> GetTileAsync(int tileIndex, CancellationToken cancellationToken) => ValueTask.FromResult(tiles[tileIndex]);
    }
}
