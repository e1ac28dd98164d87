using System.Globalization;

namespace RenderFarm.StepSyncBench;

/// <summary>The Markdown the harness prints: setup, the side-by-side table, the network arithmetic, and quality.</summary>
internal sealed class Report(
    BenchOptions options,
    Scene scene,
    IReadOnlyList<double> msPerWindow,
    IReadOnlyList<int> windowCounts,
    IReadOnlyList<RunMeasurement> runsA,
    IReadOnlyList<RunMeasurement> runsB,
    RunMeasurement control,
    Quality quality,
    string loadBefore,
    string loadAfter)
{
    private const double MiB = 1024 * 1024;
    private const double GigabitBytesPerSecond = 1e9 / 8;
    private const int TargetSide = 8192;

    public void Write(TextWriter o)
    {
        var stepsA = runsA.SelectMany(r => r.Steps).ToList();
        var stepsB = runsB.SelectMany(r => r.Steps).ToList();
        var ratios = runsA.Zip(runsB, (a, b) => a.TotalMs / b.TotalMs).Order().ToList();
        var stepA = Statistics.Median(stepsA.Select(s => s.StepMs));
        var stepB = Statistics.Median(stepsB.Select(s => s.StepMs));
        var sent = Statistics.Median(stepsB.Select(s => (double)s.BytesSent));
        var received = Statistics.Median(stepsB.Select(s => (double)s.BytesReceived));
        var traffic = sent + received;
        var windows = scene.Plan.Windows.Count;

        Line(o, $"### Setup");
        Line(o, $"");
        Line(o, $"{options.Size}² image = {scene.LatentSize}² × 4 latent; window {scene.Window.Size} latent px, overlap {scene.Window.Overlap} → {windows} windows; " +
            $"Euler, {options.Steps} steps, guidance {Scene.GuidanceScale} (UNet batch 2 per window); {options.Repetitions} interleaved repetitions; " +
            $"{Environment.ProcessorCount} logical cores; load average (1/5/15 min) before the run: {loadBefore}, after: {loadAfter}.");
        Line(o, $"Measured speed (ms per window, all participants running at once): " +
            string.Join(", ", msPerWindow.Select((ms, i) => string.Create(CultureInfo.InvariantCulture, $"P{i} {ms:0}"))) +
            " → windows " + string.Join(" / ", windowCounts) + ".");
        Line(o, $"");
        Line(o, $"### (a) one participant vs (b) {options.Participants} participants, step-synchronous");
        Line(o, $"");
        Line(o, $"| measure (medians over all steps of all repetitions) | (a) 1 participant, all windows | (b) {options.Participants} participants, fp16 transport |");
        Line(o, $"|---|---|---|");
        Line(o, $"| run time ({options.Steps} steps), median of repetitions | {Statistics.Median(runsA.Select(r => r.TotalMs)) / 1000:0.00} s | {Statistics.Median(runsB.Select(r => r.TotalMs)) / 1000:0.00} s |");
        Line(o, $"| step time | {stepA:0} ms | {stepB:0} ms |");
        Line(o, $"| **speed-up (a)/(b)**, median of per-repetition ratios (min … max) | 1 | **{Statistics.Median(ratios):0.00}×** ({ratios[0]:0.00} … {ratios[^1]:0.00}) |");
        Line(o, $"| speed-up the split allows at best (windows ÷ largest share) | 1 | {(double)windows / windowCounts.Max():0.00}× |");
        for (var p = 0; p < options.Participants; p++)
        {
            var mine = stepsB.Select(s => s.Participants[p]).ToList();
            var compute = Statistics.Median(mine.Select(m => m.ComputeMs));
            var codec = Statistics.Median(mine.Select(m => m.CodecMs));
            var wait = Statistics.Median(mine.Select(m => m.BarrierWaitMs));
            var idle = Statistics.Median(mine.Select(m => m.IdleMs));
            var a = p == 0 ? string.Create(CultureInfo.InvariantCulture, $"{windows} windows: compute {stepA:0} ms") : "";
            Line(o, $"| participant {p}: windows; compute / codec / barrier wait / idle ms per step (idle % of step) | {a} | " +
                $"{windowCounts[p]} windows: {compute:0} / {codec:0.0} / {wait:0} / {idle:0} ({100 * idle / stepB:0.0} %) |");
        }

        var coordinatorCodec = Statistics.Median(stepsB.Select(s => s.CoordinatorCodecMs));
        var coordinatorBlend = Statistics.Median(stepsB.Select(s => s.CoordinatorBlendMs));
        var participantCodec = Statistics.Median(stepsB.Select(s => s.Participants.Sum(p => p.CodecMs)));
        Line(o, $"| serialisation per step: coordinator / all participants | — (fp32 in memory) | {coordinatorCodec:0.0} ms / {participantCodec:0.0} ms ({100 * (coordinatorCodec + participantCodec) / stepB:0.00} % of the step) |");
        Line(o, $"| coordinator blend + scale + sampler per step | inside the step | {coordinatorBlend:0.0} ms |");
        Line(o, $"| traffic per step: sent / received (serialised bytes) | 0 | {sent / MiB:0.000} / {received / MiB:0.000} MiB ({traffic:N0} B) |");
        Line(o, $"| same traffic on 1 GbE / 10 GbE (share of the (b) step) | — | {Ms(traffic, 1):0.0} ms ({100 * Ms(traffic, 1) / stepB:0.00} %) / {Ms(traffic, 10):0.00} ms ({100 * Ms(traffic, 10) / stepB:0.000} %) |");
        Line(o, $"| fp32 transport control: run time | — | {control.TotalMs / 1000:0.00} s, traffic {(control.Steps[0].BytesSent + control.Steps[0].BytesReceived) / MiB:0.000} MiB/step |");
        Line(o, $"");

        WriteScaling(o, traffic, windows);
        WriteQuality(o);
    }

    private void WriteScaling(TextWriter o, double traffic, int windows)
    {
        var perWindow = traffic / windows;
        var latent = TargetSide / 8;
        var targetWindows = Harness.WindowCount(latent, scene.Window);
        var targetTraffic = perWindow * targetWindows;
        var payloadOnly = 2.0 * targetWindows * scene.Plan.WindowLength * 2;
        var computeGpu = targetWindows * options.Sd15WindowMs;
        var latentStarts = scene.Window.Starts(latent).Length;
        Line(o, $"### Scaled to {TargetSide}² (the issue's \"~30 MiB per step\")");
        Line(o, $"");
        Line(o, $"- Measured: {traffic:N0} B per step for {windows} windows = {perWindow:N0} B per window round trip " +
            $"(2 × 4 × {scene.Plan.WindowHeight} × {scene.Plan.WindowWidth} × 2 B = {2 * scene.Plan.WindowLength * 2:N0} B of fp16 values + headers).");
        Line(o, $"- {TargetSide}² = {latent}² × 4 latent; window {scene.Window}: {latentStarts} starts per axis → {targetWindows} windows " +
            $"→ {targetWindows} × {perWindow:N0} B = **{targetTraffic / MiB:0.0} MiB per step** ({payloadOnly / MiB:0.0} MiB of values; the latent itself is " +
            $"{latent * latent * 4 * 2 / MiB:0} MiB in fp16, sent {(double)targetWindows * scene.Plan.WindowHeight * scene.Plan.WindowWidth / (latent * latent):0.00}× over because windows overlap, and received back as often).");
        Line(o, $"- On the coordinator's link (every window crosses it): {Ms(targetTraffic, 1):0} ms per step at 1 GbE, {Ms(targetTraffic, 10):0.0} ms at 10 GbE.");
        Line(o, $"- SD 1.5 compute per step: {targetWindows} windows × {options.Sd15WindowMs:0} ms (one 64² window with guidance, GPU) = {computeGpu / 1000:0.00} s of GPU time, shared by the workers:");
        Line(o, $"");
        Line(o, $"| workers | compute per step (each) | 10 GbE traffic time, share of step | 1 GbE traffic time, share of step |");
        Line(o, $"|---|---|---|---|");
        foreach (var workers in new[] { 1, 4, 8, 16, 32 })
        {
            var compute = computeGpu / workers;
            Line(o, $"| {workers} | {compute:0} ms | {Ms(targetTraffic, 10):0} ms, {100 * Ms(targetTraffic, 10) / (compute + Ms(targetTraffic, 10)):0.0} % | " +
                $"{Ms(targetTraffic, 1):0} ms, {100 * Ms(targetTraffic, 1) / (compute + Ms(targetTraffic, 1)):0.0} % |");
        }

        Line(o, $"");
        Line(o, $"(Share = traffic / (compute + traffic): the time a step would take if sending and computing did not overlap.)");
        Line(o, $"");
    }

    private void WriteQuality(TextWriter o)
    {
        Line(o, $"### Quality: (b) against (a), final latent after {options.Steps} steps (largest |value| in (a): {quality.Scale:0.000})");
        Line(o, $"");
        Line(o, $"| transport | max abs difference | mean abs difference | bound (harness fails above it) |");
        Line(o, $"|---|---|---|---|");
        Line(o, $"| fp32 (control: split + blend only) | {quality.Float32.Max:G3} | {quality.Float32.Mean:G3} | {quality.Float32Bound:G3} |");
        Line(o, $"| fp16 (the mode) | {quality.Float16.Max:G3} | {quality.Float16.Mean:G3} | {quality.Float16Bound:G3} |");
        Line(o, $"| (a) repeated | {quality.RepeatA:G3} | | 0 expected |");
        Line(o, $"");
    }

    private static double Ms(double bytes, double gigabit) => 1000 * bytes / (gigabit * GigabitBytesPerSecond);

    private static void Line(TextWriter o, FormattableString text) => o.WriteLine(text.ToString(CultureInfo.InvariantCulture));

    private static void Line(TextWriter o, string text) => o.WriteLine(text);
}
