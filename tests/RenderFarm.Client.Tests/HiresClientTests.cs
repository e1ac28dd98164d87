using RenderFarm.Domain.Tiling;

namespace RenderFarm.Client.Tests;

/// <summary>Hires jobs through the typed client: the request's hires fields reach the farm and the job's tiles come back.</summary>
public sealed class HiresClientTests(CoordinatorOnSqlite farm) : IClassFixture<CoordinatorOnSqlite>
{
    private static readonly SubmitJobRequest Hires = new(
        Prompt: "a lighthouse in a storm", Width: 1024, Height: 640, Steps: 4, GuidanceScale: 7, Sampler: "euler", Seed: 11,
        Mode: RenderModes.Hires, Strength: 0.3, Tile: 384, Overlap: 48, BaseWidth: 512, BaseHeight: 320);

    private static CancellationToken Timeout => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    [Fact]
    public async Task A_hires_job_round_trips_with_its_tiles_in_final_image_pixels()
    {
        var client = farm.CreateFarmClient();

        var (job, _) = await client.SubmitJobAsync(Hires, cancellationToken: Timeout);
        var read = await client.GetJobAsync(job.Id, cancellationToken: Timeout);

        var grid = TileGrid.Create(1024, 640, 384, 48);
        read.ShouldNotBeNull();
        read.Mode.ShouldBe(RenderModes.Hires);
        read.Items.ShouldBe(grid.Tiles.Count + 2);
        read.ResultImage.ShouldBeNull();
        read.Tiles.ShouldNotBeNull().Select(t => (t.Index, t.X, t.Y, t.Width, t.Height))
            .ShouldBe([.. grid.Tiles.Select(t => (t.Index, t.X, t.Y, t.Width, t.Height))]);
        read.Tiles.ShouldAllBe(t => t.State == ItemState.Queued && t.WorkerId == null);
        job.Tiles.ShouldNotBeNull().Count.ShouldBe(grid.Tiles.Count);
    }

    [Fact]
    public async Task Hires_fields_outside_hires_are_field_errors()
    {
        var client = farm.CreateFarmClient();

        var ex = await Should.ThrowAsync<RenderFarmApiException>(() =>
            client.SubmitJobAsync(Hires with { Mode = null, Width = 512, Height = 512, Strength = null }, cancellationToken: Timeout));

        ex.Status.ShouldBe(400);
        ex.Errors.Keys.ShouldBe(["tile", "overlap", "baseWidth", "baseHeight"], ignoreOrder: true);
    }

    [Fact]
    public async Task Other_jobs_have_no_tiles()
    {
        var client = farm.CreateFarmClient();

        var (job, _) = await client.SubmitJobAsync(Hires with { Mode = null, Width = 64, Height = 64, Strength = null, Tile = null, Overlap = null, BaseWidth = null, BaseHeight = null }, cancellationToken: Timeout);

        job.Tiles.ShouldBeNull();
        job.ResultImage.ShouldBeNull();
    }
}
