using System.Security.Cryptography;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Storage.Datasets;

namespace RenderFarm.Worker.Tests;

/// <summary>Items of a WebDataset job: a unit's images are stored as one tar part per shard, then reported.</summary>
public sealed class DatasetPartTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_unit_spanning_two_shards_is_stored_as_two_parts_and_each_image_reported_with_its_part()
    {
        await using var worker = await WorkerHarness.StartAsync();
        var jobId = Guid.NewGuid();
        var prefixes = new[] { $"datasets/{jobId}/parts/000000/", $"datasets/{jobId}/parts/000001/" };
        var items = new[] { 31L, 32, 33, 34 }
            .Select((seed, i) => TestItems.Item(seed) with { Pack = new DatasetPart(prefixes[i / 3], $"{seed:D9}.png") })
            .ToArray();

        await worker.SendAsync(TestItems.Unit(jobId, items));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count == 4, Patience, "four ItemRendered");

        worker.Published.All<ItemFailed>().ShouldBeEmpty();
        var rendered = worker.Published.All<ItemRendered>().ToDictionary(r => r.ItemId);
        // One store write per shard the unit touches, none per image.
        rendered.Values.Select(r => r.ArtifactKey).Distinct().Count().ShouldBe(2);
        foreach (var item in items)
        {
            var report = rendered[item.ItemId];
            report.ArtifactKey.ShouldStartWith(item.Pack!.PartPrefix);
            report.ArtifactKey.ShouldEndWith(".tar");
            worker.Published.ArtifactExistedWhenReported(item.ItemId).ShouldBeTrue("ItemRendered went out before its part was stored");
            (await worker.Store.ExistsAsync(item.OutputKey, CancellationToken.None)).ShouldBeFalse("a packed image is not stored alone");

            await using var tar = await worker.Store.OpenReadAsync(report.ArtifactKey, CancellationToken.None);
            var png = await DatasetTar.ReadMemberAsync(tar, item.Pack.MemberName, CancellationToken.None);
            png.ShouldNotBeNull();
            Convert.ToHexStringLower(SHA256.HashData(png)).ShouldBe(report.Sha256);
            PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword].ShouldContain($"Seed: {item.Seed}");
            report.Elapsed.ShouldBeGreaterThan(TimeSpan.Zero);
        }
    }
}
