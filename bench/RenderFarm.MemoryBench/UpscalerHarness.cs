using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Upscaling;
using RenderFarm.ModelGenerator;
using RenderFarm.ModelGenerator.Upscaler;

namespace RenderFarm.MemoryBench;

/// <summary>
/// The upscaler's memory: calibrates the tiny upscaler (one child process per tile side), then upscales whole images
/// in a child process per (size, tile) and compares the measured peak RSS with <see cref="UpscalePlanner"/>'s prediction.
///   dotnet run -c Release --project bench/RenderFarm.MemoryBench -- upscaler [--out FILE] [--scale 2] [--sizes 256,512,1024]
/// </summary>
internal static class UpscalerHarness
{
    private static readonly int[] Tiles = [0, 256, 128, 64];

    public static int Probe(string directory, string side)
    {
        var result = UpscalerCalibrator.RunProbe(directory, int.Parse(side, CultureInfo.InvariantCulture), null, CancellationToken.None);
        Console.WriteLine(ProbeProcess.Write(result));
        return 0;
    }

    /// <summary>Child: upscales a <paramref name="width"/>×<paramref name="height"/> picture in tiles of <paramref name="tile"/> (0: one tile).</summary>
    public static int Upscale(string directory, int width, int height, int tile)
    {
        _ = RenderFarm.Diffusion.Models.ExecutionProviders.Available;
        var baseline = ProcessMemory.CurrentBytes;
        using var upscaler = new Upscaler(UpscalerFolder.Open(directory));
        var pixels = new byte[width * height * 3];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i * 31 % 251);
        }

        var image = new RgbImage(width, height, pixels);
        var clock = Stopwatch.StartNew();
        upscaler.Upscale(image, TileOf(tile, width, height), CancellationToken.None);
        Console.WriteLine(ProbeProcess.Write(new RenderMeasurement(ProcessMemory.PeakBytes, clock.Elapsed.TotalSeconds, baseline)));
        return 0;
    }

    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var scale = int.Parse(Arg("--scale") ?? "2", CultureInfo.InvariantCulture);
        var sizes = (Arg("--sizes") ?? "256,512,1024").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var output = Arg("--out") ?? "upscaler-memory-bench.md";
        var directory = TestModels.EnsureTinyUpscaler(Path.Combine(Path.GetTempPath(), "renderfarm-memory-bench", $"tiny-upscaler-x{scale}"), new TinyUpscalerOptions(scale));
        var self = ProbeProcess.Self("RenderFarm.MemoryBench");

        Console.Error.WriteLine($"calibrating {directory} (one child process per tile side)…");
        var samples = new List<(int, ProbeResult)>();
        foreach (var side in UpscalerCalibrator.DefaultSides)
        {
            var result = await ProbeProcess.RunAsync<ProbeResult>(self.FileName,
                [.. self.Arguments, "upscaler-probe", directory, side.ToString(CultureInfo.InvariantCulture)], cancellationToken);
            Console.Error.WriteLine($"  {side}²: base {ByteSize.Format(result.BaselineBytes)}, weights {ByteSize.Format(result.WeightBytes)}, activations {ByteSize.Format(result.ActivationBytes)}, {result.Seconds:0.000} s");
            samples.Add((side, result));
        }

        var profile = UpscalerCalibrator.Fit(samples);
        Console.Error.WriteLine("profile: " + JsonSerializer.Serialize(profile, new JsonSerializerOptions(JsonSerializerDefaults.Web)));
        var planner = new UpscalePlanner(profile);

        var md = new StringBuilder();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Profile of the tiny upscaler ×{scale}, calibrated here: base {ByteSize.Format(profile.BaseBytes)}, weights {ByteSize.Format(profile.Model.WeightBytes)}, " +
            $"activations {profile.Model.ActivationBytes.Fixed / 1048576:0.0} MiB + {profile.Model.ActivationBytes.PerToken:0.0} B·n (n = tile pixels)."));
        md.AppendLine();
        md.AppendLine("| input | output | tile (overlap) | tiles | predicted peak | measured peak | error | measured time |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        var errors = new List<double>();
        foreach (var side in sizes)
        {
            foreach (var t in Tiles.Where(t => t < side))
            {
                var shape = new UpscaleShape(side, side, scale);
                var tile = TileOf(t, side, side);
                var (predicted, _) = planner.Predict(shape, tile);
                var measured = await ProbeProcess.RunAsync<RenderMeasurement>(self.FileName,
                    [.. self.Arguments, "upscale", directory, side.ToString(CultureInfo.InvariantCulture), side.ToString(CultureInfo.InvariantCulture), t.ToString(CultureInfo.InvariantCulture)],
                    cancellationToken);
                var error = (predicted - measured.PeakBytes) / (double)measured.PeakBytes;
                errors.Add(error);
                var line = string.Create(CultureInfo.InvariantCulture,
                    $"| {side}² | {side * scale}² | {(t == 0 ? "whole image" : $"{tile.Size} ({tile.Overlap})")} | {tile.Count(side, side)} | {ByteSize.Format(predicted)} | {ByteSize.Format(measured.PeakBytes)} | {Math.Round(error * 100):+0;-0;0}% | {measured.Seconds:0.00} s |");
                md.AppendLine(line);
                Console.Error.WriteLine(line);
            }
        }

        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{errors.Count(e => Math.Abs(e) <= 0.2)} of {errors.Count} within ±20 %; mean |error| {errors.Average(Math.Abs) * 100:0.0} %, worst {Math.Round(errors.MaxBy(Math.Abs) * 100):+0;-0;0} %."));
        md.AppendLine();
        md.AppendLine("Tile the planner picks for a 1024² input under each budget:");
        md.AppendLine();
        md.AppendLine("| budget | tile | predicted peak |");
        md.AppendLine("|---|---|---|");
        foreach (var budget in new[] { 160L << 20, 200L << 20, 256L << 20, 512L << 20 })
        {
            var plan = planner.Plan(new UpscaleShape(1024, 1024, scale), budget);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {ByteSize.Format(budget)} | {(plan.Tile is { } tile ? $"{tile.Size} (overlap {tile.Overlap})" : "none fits")} | {ByteSize.Format(plan.PredictedPeakBytes)} |"));
        }

        await File.WriteAllTextAsync(output, md.ToString(), cancellationToken);
        Console.WriteLine(md.ToString());
        return 0;
    }

    private static TileSize TileOf(int tile, int width, int height) => tile == 0 ? new TileSize(Math.Max(width, height), 0) : UpscalePlanner.Tile(tile);
}
