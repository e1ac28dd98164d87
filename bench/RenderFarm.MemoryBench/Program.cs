using System.Diagnostics;
using System.Globalization;
using System.Text;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.MemoryBench;
using RenderFarm.ModelGenerator;

// Memory harness: predicted vs measured peak memory, and the maximum resolution per budget and strategy.
// Every measurement runs in a fresh child process (this program, verb `render` or `probe`) so peaks never carry over.
//   dotnet run -c Release --project bench/RenderFarm.MemoryBench -- run [--out FILE] [--sizes 256,384,512,640] [--max-seconds 90]
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

return args.FirstOrDefault() switch
{
    "probe" => Child.Probe(args[1], args[2]),
    "render" => Child.Render(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture), args[4],
        args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : Child.Steps),
    "run" => await Harness.RunAsync(args[1..], cancel.Token),
    "upscaler" => await UpscalerHarness.RunAsync(args[1..], cancel.Token),
    "upscaler-probe" => UpscalerHarness.Probe(args[1], args[2]),
    "upscale" => UpscalerHarness.Upscale(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture),
        int.Parse(args[4], CultureInfo.InvariantCulture)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: run [--out FILE] [--sizes 256,384,512,640] [--max-seconds 1800] [--verify-seconds 30] [--model DIR] [--reuse-profile] [--max-resolution-only]");
    Console.Error.WriteLine("       upscaler [--out FILE] [--scale 2] [--sizes 256,512,1024]");
    return 2;
}

namespace RenderFarm.MemoryBench
{
    /// <summary>What a child render measured: the process's peak RSS over the whole render and its wall time.</summary>
    internal sealed record RenderMeasurement(long PeakBytes, double Seconds, long BaselineBytes);

    /// <summary>The strategies the harness measures, with settings small enough to tile the smallest sizes.</summary>
    internal static class BenchStrategies
    {
        public static MemoryStrategy Parse(string names) => new()
        {
            Strategies = MemoryStrategyNames.Parse(names.Split(',')),
            UnetRowsPerCall = 1,
            VaeTile = new TileSize(16, 4),
            LatentWindow = new TileSize(24, 6),
        };

        public static readonly string[] Measured =
        [
            "resident",
            "batch-split",
            "sequential",
            "tiled-vae",
            "latent-tiling",
            "sequential,batch-split,tiled-vae,latent-tiling",
        ];

        /// <summary>The study's columns: stock, sequential offload, and our bounded-activation combinations.</summary>
        public static readonly string[] MaxResolution =
        [
            "resident",
            "batch-split",
            "sequential,batch-split",
            "sequential,batch-split,tiled-vae",
            "sequential,batch-split,tiled-vae,latent-tiling",
        ];
    }

    internal static class Child
    {
        public const int Steps = 2;

        public static int Probe(string model, string spec)
        {
            var result = MemoryCalibrator.RunProbe(model, CalibrationProbe.Parse(spec), options: null, CancellationToken.None);
            Console.WriteLine(ProbeProcess.Write(result));
            return 0;
        }

        public static int Render(string model, int width, int height, string strategy, int steps)
        {
            _ = RenderFarm.Diffusion.Models.ExecutionProviders.Available;
            var baseline = ProcessMemory.CurrentBytes;
            using var pipeline = StableDiffusionPipeline.Open(model);
            var request = new GenerationRequest
            {
                Images = [new ImageSpec("a lighthouse at dusk", "blurry", 42)],
                Width = width,
                Height = height,
                Steps = steps,
                Sampler = SamplerNames.Euler,
                Memory = BenchStrategies.Parse(strategy),
            };
            var clock = Stopwatch.StartNew();
            pipeline.Generate(request, null, CancellationToken.None);
            var seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine(ProbeProcess.Write(new RenderMeasurement(ProcessMemory.PeakBytes, seconds, baseline)));
            return 0;
        }
    }

    internal static class Harness
    {
        private static readonly long[] Budgets = [2L << 30, 4L << 30, 8L << 30];

        public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
        {
            string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
            var sizes = (Arg("--sizes") ?? "256,384,512,640").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            // A 20-step image may take at most this long (the study's 1984² took 17 minutes); beyond it a size is time-bound.
            var maxSeconds = double.Parse(Arg("--max-seconds") ?? "1800", CultureInfo.InvariantCulture);
            // Check a predicted largest size by rendering it (two steps: ONNX Runtime's first run of a shape allocates
            // tensor by tensor, the second plans one memory pattern and peaks higher, so one step under-measures) only when
            // that is predicted to take at most this long; two cores are shared with other builds.
            var verifySeconds = double.Parse(Arg("--verify-seconds") ?? "40", CultureInfo.InvariantCulture);
            var model = Arg("--model") ?? TestModels.EnsureTiny(Path.Combine(Path.GetTempPath(), "renderfarm-memory-bench", "tiny-sd"));
            var output = Arg("--out") ?? "memory-bench.md";
            var self = ProbeProcess.Self("RenderFarm.MemoryBench");

            var folder = RenderFarm.Diffusion.Models.ModelFolder.Open(model);
            var profile = args.Contains("--reuse-profile") ? MemoryProfile.TryLoad(folder.Root) : null;
            if (profile is null)
            {
                Console.Error.WriteLine($"calibrating {folder.Root} (one child process per probe)…");
                profile = MemoryCalibrator.Calibrate(folder,
                    (probe, ct) => ProbeProcess.RunAsync<ProbeResult>(self.FileName, [.. self.Arguments, "probe", folder.Root, probe.ToString()], ct).GetAwaiter().GetResult(),
                    new Log(), cancellationToken);
                profile.Save(folder.Root);
            }

            var planner = new MemoryPlanner(profile);

            // Time-bound sizes repeat across budgets: render each (size, strategy) once.
            var measurements = new Dictionary<(int, string, int), RenderMeasurement>();
            async Task<RenderMeasurement> MeasureAsync(int side, string strategy, int steps = Child.Steps)
            {
                if (!measurements.TryGetValue((side, strategy, steps), out var measured))
                {
                    measured = await ProbeProcess.RunAsync<RenderMeasurement>(self.FileName,
                        [.. self.Arguments, "render", folder.Root, side.ToString(CultureInfo.InvariantCulture), side.ToString(CultureInfo.InvariantCulture), strategy,
                            steps.ToString(CultureInfo.InvariantCulture)], cancellationToken);
                    measurements[(side, strategy, steps)] = measured;
                }

                return measured;
            }

            var md = new StringBuilder();
            md.AppendLine(CultureInfo.InvariantCulture, $"Profile: `{MemoryProfile.FileName}` of the tiny model, base {ByteSize.Format(profile.BaseBytes)}; UNet weights {ByteSize.Format(profile.Unet.WeightBytes)}, " +
                $"activations {profile.Unet.ActivationBytes.Fixed / 1048576:0.0} MiB + rows·({profile.Unet.ActivationBytes.PerToken:0} B·n + {profile.Unet.ActivationBytes.PerTokenSquared:0.00} B·n²), n = latent pixels.");
            md.AppendLine();
            md.AppendLine("| size | strategy | predicted peak | measured peak | error | measured time (2 steps) | predicted time (2 steps) |");
            md.AppendLine("|---|---|---|---|---|---|---|");
            var errors = new List<double>();
            foreach (var side in args.Contains("--max-resolution-only") ? [] : sizes)
            {
                foreach (var names in BenchStrategies.Measured)
                {
                    var strategy = BenchStrategies.Parse(names);
                    var predicted = planner.Predict(new RenderShape(side, side, Steps: Child.Steps), strategy);
                    var measured = await MeasureAsync(side, names);
                    var error = (predicted.PeakBytes - measured.PeakBytes) / (double)measured.PeakBytes;
                    errors.Add(error);
                    var line = string.Create(CultureInfo.InvariantCulture,
                        $"| {side}² | {names} | {ByteSize.Format(predicted.PeakBytes)} | {ByteSize.Format(measured.PeakBytes)} | {Math.Round(error * 100):+0;-0;0}% | {measured.Seconds:0.00} s | {predicted.Seconds:0.00} s |");
                    md.AppendLine(line);
                    Console.Error.WriteLine(line);
                }
            }

            md.AppendLine();
            if (errors.Count > 0)
            {
                md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"{errors.Count(e => Math.Abs(e) <= 0.2)} of {errors.Count} within ±20 %; mean |error| {errors.Average(Math.Abs) * 100:0.0} %, worst {Math.Round(errors.MaxBy(Math.Abs) * 100):+0;-0;0} %."));
            }

            md.AppendLine();

            md.AppendLine("### Tiny model on this machine (CPU, process RSS)");
            md.AppendLine();
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"Largest square (multiple of 8, ≤ 2048²) the planner predicts under each budget with a 20-step image taking ≤ {maxSeconds:0} s, then rendered with {Child.Steps} steps in a child process to check the peak where that is predicted to take ≤ {verifySeconds:0} s."));
            md.AppendLine();
            md.AppendLine("| budget | strategy | predicted largest | measured peak there | fits? | measured time (2 steps, cold) | predicted time (20 steps) |");
            md.AppendLine("|---|---|---|---|---|---|---|");
            foreach (var budget in Budgets)
            {
                foreach (var names in BenchStrategies.MaxResolution)
                {
                    var strategy = BenchStrategies.Parse(names);
                    var side = planner.LargestSquare(budget, strategy: strategy, maxSeconds: maxSeconds, maxSide: 2048);
                    if (side == 0)
                    {
                        md.AppendLine(CultureInfo.InvariantCulture, $"| {ByteSize.Format(budget)} | {names} | — | | | | |");
                        continue;
                    }

                    var predictedStep = planner.Predict(new RenderShape(side, side, Steps: Child.Steps), strategy);
                    var timeBound = side < 2048 && planner.Predict(new RenderShape(side + 8, side + 8, Steps: 1), strategy).PeakBytes <= budget;
                    var twenty = planner.Predict(new RenderShape(side, side), strategy).Seconds;
                    var bound = side == 2048 ? " (size cap)" : timeBound ? " (time cap)" : "";
                    string line;
                    if (predictedStep.Seconds <= verifySeconds)
                    {
                        var measured = await MeasureAsync(side, names);
                        line = string.Create(CultureInfo.InvariantCulture,
                            $"| {ByteSize.Format(budget)} | {names} | {side}²{bound} | {ByteSize.Format(measured.PeakBytes)} (pred. {ByteSize.Format(predictedStep.PeakBytes)}) | {(measured.PeakBytes <= budget ? "yes" : "**no**")} | {measured.Seconds:0.0} s | {twenty:0} s |");
                    }
                    else
                    {
                        line = string.Create(CultureInfo.InvariantCulture,
                            $"| {ByteSize.Format(budget)} | {names} | {side}²{bound} | not rendered (pred. {ByteSize.Format(predictedStep.PeakBytes)}, {predictedStep.Seconds:0} s) | | | {twenty:0} s |");
                    }

                    md.AppendLine(line);
                    Console.Error.WriteLine(line);
                }
            }

            md.AppendLine();
            md.AppendLine("### Stable Diffusion 1.5 (predicted profile, fp16 on a CUDA GPU)");
            md.AppendLine();
            var sd15 = new MemoryPlanner(MemoryProfile.StableDiffusion15());
            var sd15Fp32 = new MemoryPlanner(MemoryProfile.StableDiffusion15(4));
            md.AppendLine("| budget | strategy | largest square (fp16) | time / image (20 steps) | largest square (fp32) |");
            md.AppendLine("|---|---|---|---|---|");
            foreach (var budget in Budgets)
            {
                foreach (var names in BenchStrategies.MaxResolution)
                {
                    var strategy = names.Contains("latent-tiling", StringComparison.Ordinal)
                        ? BenchStrategies.Parse(names) with { VaeTile = new TileSize(32, 8), LatentWindow = new TileSize(64, 16) }
                        : BenchStrategies.Parse(names) with { VaeTile = new TileSize(32, 8) };
                    // 30 minutes an image caps sizes that memory no longer bounds (the study's 1984² took 17 minutes).
                    var side = sd15.LargestSquare(budget, strategy: strategy, maxSeconds: 1800, maxSide: 8192);
                    var side32 = sd15Fp32.LargestSquare(budget, strategy: strategy, maxSeconds: 1800, maxSide: 8192);
                    var seconds = side == 0 ? 0 : sd15.Predict(new RenderShape(side, side), strategy).Seconds;
                    var timeBound = side is > 0 and < 8192 && sd15.Predict(new RenderShape(side + 8, side + 8), strategy).PeakBytes <= budget;
                    md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {ByteSize.Format(budget)} | {names} | {(side == 0 ? "—" : $"{side}²")}{(side == 8192 ? " (size cap)" : timeBound ? " (time cap)" : "")} | {(side == 0 ? "" : $"{seconds:0} s")} | {(side32 == 0 ? "—" : $"{side32}²")} |"));
                }
            }

            await File.WriteAllTextAsync(output, md.ToString(), cancellationToken);
            Console.WriteLine(md.ToString());
            return 0;
        }

        private sealed class Log : IProgress<string>
        {
            public void Report(string value) => Console.Error.WriteLine("  " + value);
        }
    }
}
