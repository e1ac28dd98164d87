using RenderFarm.Client;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Watermarking;

namespace RenderFarm.Cli.Tests;

/// <summary><c>renderfarm serve --watermark</c>: the farm-wide watermark, embedded by the workers' engine and read back from the stored PNGs.</summary>
public sealed class WatermarkFarmTests
{
    private static CancellationToken Timeout(int seconds = 180) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    [Fact]
    public async Task A_farm_with_a_watermark_marks_the_images_of_its_jobs_and_leaves_small_ones_unmarked()
    {
        var root = Directory.CreateTempSubdirectory("rf-watermark-").FullName;
        try
        {
            await using var serve = await EmbeddedServe.StartAsync(Path.Combine(root, "data"), workers: 1, "--watermark", "StableDiffusionV1");
            var client = serve.CreateClient();

            var large = await RenderAsync(client, 256);
            var small = await RenderAsync(client, 64);

            DwtDctWatermark.Decode(PngCodec.Decode(large))?.Text.ShouldBe("StableDiffusionV1");
            GenerationParameters.Parse(PngCodec.ReadTextChunks(large)["parameters"]).Watermark.ShouldBe("dwtDct");
            GenerationParameters.Parse(PngCodec.ReadTextChunks(small)["parameters"]).Watermark.ShouldBeNull();
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Serve_refuses_a_watermark_it_cannot_embed()
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("serve", "--urls", "http://127.0.0.1:0", "--watermark", "");

        exitCode.ShouldBe(2);
        stderr.ShouldContain("--watermark");
    }

    private static async Task<byte[]> RenderAsync(RenderFarmClient client, int size)
    {
        var request = new SubmitJobRequest(Prompt: "a lighthouse at dusk", Width: size, Height: size, Steps: 2, GuidanceScale: 7.5, Sampler: "euler_a", Count: 1, Seed: 5);
        var (submitted, _) = await client.SubmitJobAsync(request, cancellationToken: Timeout());
        var job = await EmbeddedFarmTests.WaitFinalAsync(client, submitted.Id);
        job.State.ShouldBe(JobState.Succeeded);
        await using var png = await client.DownloadImageAsync(job.Id, 0, Timeout());
        using var bytes = new MemoryStream();
        await png.CopyToAsync(bytes);
        return bytes.ToArray();
    }
}
