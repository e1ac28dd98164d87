using System.Diagnostics;
using System.Globalization;
using RenderFarm.Client;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Domain.Tiling;
using Xunit.Abstractions;

namespace RenderFarm.Cli.Tests;

/// <summary>
/// Distributed hires end to end (issue 6): <c>renderfarm submit --mode hires</c> to <c>renderfarm serve --workers 2</c>,
/// the tiles spread over both workers, <c>renderfarm fetch</c> of the stitched image, which must be seam-free and the
/// very bytes that <c>renderfarm render</c> makes of the same request on one machine.
/// </summary>
public sealed class HiresFarmTests(EmbeddedFarmFixture farm, ITestOutputHelper output) : IClassFixture<EmbeddedFarmFixture>
{
    private const int Side = 1536;
    private const int Tile = 512;
    private const int Overlap = 64;
    private const int BaseSide = 512;
    private const long Seed = 11;
    private const string Prompt = "a lighthouse at dusk";
    private const string Negative = "blurry";

    // 4 steps at strength 0.5: the base denoises 4 steps, each tile 2 (steps × strength), so 16 tiles of 512² stay cheap
    // on the tiny model while every tile is still refined by more than one step.
    private static readonly string[] Request =
    [
        Prompt, "--negative", Negative, "--seed", Seed.ToString(CultureInfo.InvariantCulture), "--width", "1536", "--height", "1536", "--steps", "4", "--sampler", "euler",
        "--strength", "0.5", "--tile", "512", "--overlap", "64", "--base-width", "512", "--base-height", "512",
    ];

    [Fact]
    public async Task A_1536_hires_job_is_rendered_by_both_workers_and_stitched_seam_free_into_the_single_machine_image()
    {
        var farmUrl = farm.Serve.Address.ToString();
        var client = farm.Serve.CreateClient();
        var folder = Path.Combine(farm.Scratch, "hires-" + Guid.NewGuid().ToString("N"));

        var clock = Stopwatch.StartNew();
        var submit = await Cli.RunAsync(["submit", .. Request, "--mode", "hires", "--farm", farmUrl]);
        submit.ExitCode.ShouldBe(0, submit.Error);
        var id = Guid.Parse(submit.Output.Trim());
        // About 30 s on an idle machine; a loaded CI (every project in parallel on two cores) took 3.5 min. The bound
        // only stops a hung farm.
        var job = await EmbeddedFarmTests.WaitFinalAsync(client, id, TimeSpan.FromMinutes(8));
        var farmSeconds = clock.Elapsed.TotalSeconds;
        var fetch = await Cli.RunAsync("fetch", id.ToString(), "-o", Path.Combine(folder, "final"), "--farm", farmUrl);
        var fetchAll = await Cli.RunAsync("fetch", id.ToString(), "--all", "-o", Path.Combine(folder, "parts"), "--farm", farmUrl);

        // The job: base, 16 tiles, stitch, all succeeded, the tiles spread over both workers.
        job.State.ShouldBe(JobState.Succeeded, string.Join("; ", job.Errors.Select(e => e.Error)));
        var grid = TileGrid.Create(Side, Side, Tile, Overlap);
        grid.Tiles.Count.ShouldBe(16);
        job.Items.ShouldBe(grid.Tiles.Count + 2L);
        var tiles = job.Tiles.ShouldNotBeNull();
        tiles.Select(t => (t.Index, t.X, t.Y, t.Width, t.Height)).ShouldBe([.. grid.Tiles.Select(t => (t.Index, t.X, t.Y, t.Width, t.Height))]);
        tiles.ShouldAllBe(t => t.State == ItemState.Succeeded);
        var byWorker = tiles.GroupBy(t => t.WorkerId.ShouldNotBeNull()).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        byWorker.Count.ShouldBeGreaterThanOrEqualTo(2, "the tiles must be spread over both workers");
        job.ResultImage.ShouldNotBeNull();

        // The final image: fetched through the CLI, 1536², carrying the request's parameters.
        fetch.ExitCode.ShouldBe(0, fetch.Error);
        var finalPath = Path.Combine(folder, "final", string.Create(CultureInfo.InvariantCulture, $"{grid.Tiles.Count + 1:D6}.png"));
        var png = await File.ReadAllBytesAsync(finalPath);
        var image = PngCodec.Decode(png);
        (image.Width, image.Height).ShouldBe((Side, Side));
        var text = PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword];
        var parameters = GenerationParameters.Parse(text);
        (parameters.Prompt, parameters.NegativePrompt, parameters.Seed, parameters.Steps, parameters.Sampler).ShouldBe((Prompt, Negative, (ulong)Seed, 4, "euler"));
        (parameters.Width, parameters.Height, parameters.DenoisingStrength).ShouldBe((Side, Side, 0.5));
        text.ShouldContain($"Hires base: {BaseSide}x{BaseSide}, Hires tile: {Tile}, Hires overlap: {Overlap}, Hires tiles: {grid.Tiles.Count}");

        // Seams: the worst tile boundary against the image's median line.
        var columns = tiles.SelectMany(t => new[] { t.X, t.X + t.Width }).Where(x => x > 0 && x < Side).Distinct().Order().ToArray();
        var rows = tiles.SelectMany(t => new[] { t.Y, t.Y + t.Height }).Where(y => y > 0 && y < Side).Distinct().Order().ToArray();
        var seams = SeamMetrics.Measure(image, columns, rows);

        fetchAll.ExitCode.ShouldBe(0, fetchAll.Error);
        var tileImages = grid.Tiles.Select(t => PngCodec.Decode(File.ReadAllBytes(Path.Combine(folder, "parts", string.Create(CultureInfo.InvariantCulture, $"{t.Index + 1:D6}.png"))))).ToArray();
        var untiled = UntiledReference(grid, tileImages, columns, rows);
        var pasted = SeamMetrics.Measure(HardPaste(grid, tileImages), columns, rows);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Side}² from a {BaseSide}² base, {grid.Tiles.Count} tiles of {Tile} (overlap {Overlap}) by {string.Join(", ", byWorker.Select(w => $"{w.Key}: {w.Value}"))}: " +
            $"seam ratio {seams.Ratio:0.000} (median {seams.MedianGradient:0.00}, worst {seams.WorstBoundaryGradient:0.00} at {(seams.WorstIsVertical ? "x" : "y")}={seams.WorstBoundary}); " +
            $"the same lines inside the untiled tile renders {untiled:0.000}; tiles pasted without blending {pasted.Ratio:0.000}; farm {farmSeconds:0.0} s"));

        // The issue's bound. The render is deterministic (seeded, byte-identical to the one-machine render below), so
        // this is not a threshold that passes by luck: it measured 1.138. A random-weight model's texture varies from
        // line to line by about 20% by chance (the untiled tile renders score up to ~1.24 at these very lines, printed
        // above), which is why the tiles pasted without their cross-fade must fail it too: otherwise the bound could
        // not see a seam at all.
        const double bound = 1.2;
        seams.Ratio.ShouldBeLessThanOrEqualTo(bound);
        pasted.Ratio.ShouldBeGreaterThan(bound, "a hard seam must fail the bound");

        // The single-machine render of the same request, with the model the farm's workers used.
        var single = Path.Combine(folder, "single.png");
        var render = await Cli.RunAsync(["render", .. Request, "--hires", "--model", Path.Combine(farm.Serve.DataRoot, "models", "tiny-sd"), "-o", single]);
        render.ExitCode.ShouldBe(0, render.Error);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"single-machine render {clock.Elapsed.TotalSeconds - farmSeconds:0.0} s (with fetches and metrics)"));
        // Compared as spans: on a mismatch Shouldly would print both 7 MB arrays; the first differing byte says enough.
        var expected = await File.ReadAllBytesAsync(single);
        var differsAt = png.AsSpan().CommonPrefixLength(expected);
        (differsAt == png.Length && png.Length == expected.Length).ShouldBeTrue(
            $"the farm's image must be byte for byte the single-machine render: {png.Length} vs {expected.Length} bytes, first difference at byte {differsAt}");
    }

    /// <summary>
    /// The seam ratio of the boundary lines in renders that had no tiling: each line measured inside every tile whose
    /// interior it crosses (the tile's own untiled 512² render), against that tile's median line; the worst of them.
    /// </summary>
    private static double UntiledReference(TileGrid grid, IReadOnlyList<RgbImage> tiles, int[] columns, int[] rows)
    {
        var worst = 0.0;
        foreach (var t in grid.Tiles)
        {
            var inside = SeamMetrics.Measure(
                tiles[t.Index],
                columns.Where(x => x > t.X && x < t.X + t.Width).Select(x => x - t.X),
                rows.Where(y => y > t.Y && y < t.Y + t.Height).Select(y => y - t.Y));
            worst = Math.Max(worst, inside.Ratio);
        }

        return worst;
    }

    /// <summary>The tiles copied into place in index order without blending: what a stitch that lost its cross-fade would show.</summary>
    private static RgbImage HardPaste(TileGrid grid, IReadOnlyList<RgbImage> tiles)
    {
        var pixels = new byte[grid.Width * grid.Height * 3];
        foreach (var t in grid.Tiles)
        {
            for (var y = 0; y < t.Height; y++)
            {
                Array.Copy(tiles[t.Index].Pixels, y * t.Width * 3, pixels, ((t.Y + y) * grid.Width + t.X) * 3, t.Width * 3);
            }
        }

        return new RgbImage(grid.Width, grid.Height, pixels);
    }
}
