using System.Text.Json;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Storage;

namespace RenderFarm.IntegrationTests.Infrastructure;

internal static class JobAssertions
{
    /// <summary>The job's images as (index, seed, workerId), checked to hold each index exactly once.</summary>
    public static IReadOnlyList<(long Index, long Seed, string? WorkerId)> ImagesExactlyOnce(JsonElement job, int count)
    {
        var images = job.GetProperty("images").EnumerateArray()
            .Select(i => (Index: i.GetProperty("index").GetInt64(), Seed: i.GetProperty("seed").GetInt64(), WorkerId: i.GetProperty("workerId").GetString()))
            .ToList();
        images.Select(i => i.Index).Order().ShouldBe(Enumerable.Range(0, count).Select(i => (long)i), job.ToString());
        return images;
    }

    /// <summary>
    /// Reads every image of the job back from the bucket: exactly <paramref name="count"/> objects under the job's
    /// prefix, each a 64×64 PNG whose parameters chunk names its prompt and seed.
    /// </summary>
    public static async Task ImagesInBucketAsync(FarmEnvironment environment, Guid jobId, string prompt, long baseSeed, int count, CancellationToken cancellationToken)
    {
        using var store = environment.CreateStore();
        var keys = new List<string>();
        await foreach (var artifact in store.ListAsync(ArtifactKeys.JobPrefix(jobId), cancellationToken))
            keys.Add(artifact.Key);
        keys.Order(StringComparer.Ordinal).ShouldBe(Enumerable.Range(0, count).Select(i => ArtifactKeys.Image(jobId, i)));

        for (var index = 0; index < count; index++)
        {
            await using var stream = await store.OpenReadAsync(ArtifactKeys.Image(jobId, index), cancellationToken);
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken);
            var png = buffer.ToArray();

            var image = PngCodec.Decode(png);
            (image.Width, image.Height).ShouldBe((64, 64));
            var chunks = PngCodec.ReadTextChunks(png);
            chunks.Keys.ShouldContain(PngCodec.ParametersKeyword);
            var parameters = chunks[PngCodec.ParametersKeyword];
            parameters.ShouldContain(prompt);
            parameters.ShouldContain($"Seed: {baseSeed + index},");
        }
    }
}
