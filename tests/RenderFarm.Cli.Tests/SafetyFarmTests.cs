using RenderFarm.Client;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Watermarking;
using RenderFarm.ModelGenerator;
using RenderFarm.ModelGenerator.Safety;

namespace RenderFarm.Cli.Tests;

/// <summary>
/// A job's <c>safety</c> and <c>watermark</c> through the embedded farm: the workers' engine runs the model's checker as
/// the job asks (the tiny checker at a threshold that flags every image), and embeds the job's own watermark.
/// </summary>
public sealed class SafetyFarmTests : IAsyncLifetime
{
    private const string FlagAll = "flag-all";
    private readonly string _root = Directory.CreateTempSubdirectory("rf-safety-farm-").FullName;
    private EmbeddedServe _serve = null!;

    private static CancellationToken Timeout(int seconds = 180) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    public async Task InitializeAsync()
    {
        // Installed under the farm's models root before it starts, so the coordinator knows the name.
        var model = Path.Combine(_root, "data", "models", FlagAll);
        TestModels.WriteOracle(model);
        TestModels.WriteSafetyChecker(model, new TinySafetyCheckerOptions(RedThreshold: -10f));
        _serve = await EmbeddedServe.StartAsync(Path.Combine(_root, "data"), workers: 1);
    }

    public async Task DisposeAsync()
    {
        await _serve.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Block_stores_nothing_and_fails_each_item_with_the_checkers_reason()
    {
        var client = _serve.CreateClient();

        var job = await RenderAsync(client, FlagAll, safety: "block", count: 2);

        job.State.ShouldBe(JobState.Failed);
        job.Progress.Failed.ShouldBe(2);
        job.Images.ShouldBeEmpty();
        var manifest = await client.GetManifestAsync(job.Id, Timeout()).ToListAsync();
        manifest.ShouldAllBe(e => e.Status == ManifestStatuses.Failed && e.Url == null && e.Sha256 == null);
        manifest.ShouldAllBe(e => e.Error!.Contains("safety checker (safety: block)"));
        Directory.EnumerateFiles(Path.Combine(_root, "data"), "*.png", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Theory]
    [InlineData(null, "flagged")]
    [InlineData("blur", "blurred")]
    public async Task A_flagged_image_is_kept_or_blurred_and_its_outcome_recorded_on_the_image(string? safety, string outcome)
    {
        var client = _serve.CreateClient();

        var job = await RenderAsync(client, FlagAll, safety, count: 1);

        job.State.ShouldBe(JobState.Succeeded);
        job.Images.Single().Safety.ShouldBe(outcome);
        (await client.GetManifestAsync(job.Id, Timeout()).SingleAsync()).Safety.ShouldBe(outcome);
        GenerationParameters.Parse(PngCodec.ReadTextChunks(await DownloadAsync(client, job.Id))["parameters"]).SafetyChecker.ShouldBe(outcome);
    }

    [Fact]
    public async Task Off_runs_no_checker()
    {
        var client = _serve.CreateClient();

        var job = await RenderAsync(client, FlagAll, "off", count: 1);

        job.State.ShouldBe(JobState.Succeeded);
        job.Images.Single().Safety.ShouldBeNull();
    }

    [Fact]
    public async Task A_jobs_watermark_is_embedded_in_its_images_and_not_in_another_jobs()
    {
        var client = _serve.CreateClient();

        // The farm's default model (the generated tiny one), which has no checker.
        var marked = await RenderAsync(client, model: null, safety: null, count: 1, size: 256, watermark: "job 42 provenance");
        var plain = await RenderAsync(client, model: null, safety: null, count: 1, size: 256);

        DwtDctWatermark.Decode(PngCodec.Decode(await DownloadAsync(client, marked.Id)))?.Text.ShouldBe("job 42 provenance");
        DwtDctWatermark.Decode(PngCodec.Decode(await DownloadAsync(client, plain.Id))).ShouldBeNull();
    }

    private static async Task<Job> RenderAsync(RenderFarmClient client, string? model, string? safety, int count, int size = 64, string? watermark = null)
    {
        var request = new SubmitJobRequest(
            Prompt: "a red fox", Width: size, Height: size, Steps: 2, GuidanceScale: 7.5, Sampler: "euler", Count: count, Seed: 7,
            Model: model, Safety: safety, Watermark: watermark);
        var (submitted, _) = await client.SubmitJobAsync(request, cancellationToken: Timeout());
        return await EmbeddedFarmTests.WaitFinalAsync(client, submitted.Id);
    }

    private static async Task<byte[]> DownloadAsync(RenderFarmClient client, Guid jobId)
    {
        await using var png = await client.DownloadImageAsync(jobId, 0, Timeout());
        using var bytes = new MemoryStream();
        await png.CopyToAsync(bytes);
        return bytes.ToArray();
    }
}
