using System.Globalization;
using RenderFarm.Diffusion.Memory;
using RenderFarm.ModelGenerator;

namespace RenderFarm.StepSyncBench;

/// <summary>
/// Runs (a) and (b) side by side, interleaved (the order flips every repetition, so drift on a shared machine falls
/// on both alike), then the fp32-transport control, checks that (b) reproduces (a), and prints the Markdown report.
/// </summary>
internal static class Harness
{
    /// <summary>
    /// (b) with fp32 transport differs from (a) only in the order of float operations (guidance before the blend
    /// instead of after): a relative 1e-4 of the latent's range is far above that and far below any window error.
    /// </summary>
    public const double Float32Tolerance = 1e-4;

    /// <summary>
    /// fp16 rounds each value to 2⁻¹¹ relative, twice per step (request and reply); through the UNet, the guidance
    /// scale and the sampler that measured about 0.02 % of the latent's range over 3–5 steps. 0.2 % leaves ten times
    /// that, while a window blended with the wrong weights moved values by most of the range (tried: 11.2 of 12.0).
    /// </summary>
    public const double Float16Tolerance = 2e-3;

    public static async Task<int> RunAsync(BenchOptions options, TextWriter output)
    {
        var loadBefore = LoadAverage();
        var model = options.Model ?? TestModels.EnsureTiny(Path.Combine(Path.GetTempPath(), "renderfarm-stepsync-bench", "tiny-sd"));
        var scene = new Scene(model, options);
        using var single = new SingleParticipantRun(scene);
        using var coordinator = new StepSyncCoordinator(scene, options.Participants);

        var msPerWindow = await coordinator.MeasureSpeedAsync(rounds: 3).ConfigureAwait(false);
        coordinator.Assign(msPerWindow);

        // Warm-up: the first run of each session plans its memory.
        single.Run(stepLimit: 1);
        await coordinator.RunAsync(WireFormat.Float16, stepLimit: 1).ConfigureAwait(false);

        var runsA = new List<RunMeasurement>();
        var runsB = new List<RunMeasurement>();
        for (var rep = 0; rep < options.Repetitions; rep++)
        {
            if (rep % 2 == 0)
            {
                runsA.Add(single.Run());
                runsB.Add(await coordinator.RunAsync(WireFormat.Float16).ConfigureAwait(false));
            }
            else
            {
                runsB.Add(await coordinator.RunAsync(WireFormat.Float16).ConfigureAwait(false));
                runsA.Add(single.Run());
            }

            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"repetition {rep + 1}/{options.Repetitions}: (a) {runsA[^1].TotalMs / 1000:0.00} s, (b) {runsB[^1].TotalMs / 1000:0.00} s"));
        }

        var control = await coordinator.RunAsync(WireFormat.Float32).ConfigureAwait(false);

        var reference = runsA[0].FinalLatents;
        var scale = Math.Max(1, Statistics.MaxAbs(reference));
        var fp16 = runsB.Select(r => Statistics.Difference(r.FinalLatents, reference)).MaxBy(d => d.Max);
        var fp32 = Statistics.Difference(control.FinalLatents, reference);
        var repeatA = runsA.Max(r => Statistics.Difference(r.FinalLatents, reference).Max);

        var report = new Report(options, scene, msPerWindow, coordinator.WindowCounts, runsA, runsB, control,
            new Quality(scale, fp16, fp32, repeatA, Float16Tolerance * scale, Float32Tolerance * scale), loadBefore, LoadAverage());
        report.Write(output);

        var failures = new List<string>();
        if (fp32.Max > Float32Tolerance * scale)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"(b) with fp32 transport differs from (a) by {fp32.Max:G4} > {Float32Tolerance * scale:G4}"));
        }

        if (fp16.Max > Float16Tolerance * scale)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"(b) with fp16 transport differs from (a) by {fp16.Max:G4} > {Float16Tolerance * scale:G4}"));
        }

        foreach (var failure in failures)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"FAILED: {failure}: the split or the blend is wrong."));
        }

        return failures.Count == 0 ? 0 : 1;
    }

    /// <summary>The 1, 5 and 15-minute load averages: the machine is shared, so the report says how busy it was.</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>Windows of <paramref name="window"/> over a square latent of <paramref name="latent"/>.</summary>
    public static int WindowCount(int latent, TileSize window) => window.Count(latent, latent);
}

/// <summary>How far (b)'s final latent is from (a)'s, and the bounds it is held to.</summary>
internal sealed record Quality(
    double Scale,
    (double Max, double Mean) Float16,
    (double Max, double Mean) Float32,
    double RepeatA,
    double Float16Bound,
    double Float32Bound);
