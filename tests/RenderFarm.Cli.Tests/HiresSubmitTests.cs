using RenderFarm.Client;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Cli.Tests;

/// <summary>
/// <c>renderfarm submit --mode hires</c> and <c>fetch</c> of a hires job against the embedded farm. The job is canceled
/// before it can finish: rendering hires through the workers is the end-to-end test's business.
/// </summary>
public sealed class HiresSubmitTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    private string FarmUrl => farm.Serve.Address.ToString();

    [Fact]
    public async Task Submit_passes_every_hires_flag_to_the_farm()
    {
        // 1000 steps keep the base busy long enough that the cancel below lands before any stitch.
        var submit = await Cli.RunAsync("submit", "a lighthouse in a storm", "--mode", "hires", "--width", "640", "--height", "512", "--steps", "1000",
            "--tile", "384", "--overlap", "48", "--strength", "0.3", "--base-width", "320", "--base-height", "256", "--seed", "3", "--farm", FarmUrl);
        submit.ExitCode.ShouldBe(0, submit.Error);
        var id = Guid.Parse(submit.Output.Trim());
        var client = farm.Serve.CreateClient();
        await client.CancelJobAsync(id, "test over", new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        var job = await client.GetJobAsync(id);
        var fetch = await Cli.RunAsync("fetch", id.ToString(), "-o", Path.Combine(farm.Scratch, "hires-" + id.ToString("N")), "--farm", FarmUrl);

        var grid = TileGrid.Create(640, 512, 384, 48);
        job.ShouldNotBeNull();
        (job.Mode, job.Width, job.Height, job.Seed).ShouldBe((RenderModes.Hires, 640, 512, 3L));
        job.Tiles.ShouldNotBeNull().Select(t => (t.X, t.Y, t.Width, t.Height)).ShouldBe([.. grid.Tiles.Select(t => (t.X, t.Y, t.Width, t.Height))]);
        fetch.ExitCode.ShouldBe(1, fetch.Output);
        fetch.Output.ShouldContain("not stitched yet and never will be");
    }

    [Theory]
    [InlineData("--tile", "500", "tile: ")]
    [InlineData("--overlap", "300", "overlap: ")]
    [InlineData("--base-width", "704", "baseWidth: ")]
    public async Task A_bad_hires_flag_exits_2_naming_its_field(string flag, string value, string field)
    {
        var flags = new Dictionary<string, string> { ["--base-width"] = "320", ["--base-height"] = "256" };
        flags[flag] = value;
        var (exitCode, _, error) = await Cli.RunAsync(
            ["submit", "a red fox", "--mode", "hires", "--width", "640", "--height", "512", .. flags.SelectMany(f => new[] { f.Key, f.Value }), "--farm", FarmUrl]);

        exitCode.ShouldBe(2, error);
        error.Split('\n', StringSplitOptions.TrimEntries).ShouldContain(l => l.StartsWith(field, StringComparison.Ordinal), error);
    }
}
