using System.Diagnostics;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Upscaling;

namespace RenderFarm.Diffusion.Memory;

/// <summary>
/// Measures an upscaler's memory and time per tile side and fits its <see cref="UpscalerMemoryProfile"/>, as
/// <see cref="MemoryCalibrator"/> does for the Stable Diffusion components: each probe loads the model, runs one
/// square tile twice and keeps the second run's peak RSS; each probe belongs in a fresh process.
/// </summary>
public static class UpscalerCalibrator
{
    /// <summary>Tile sides probed (input pixels).</summary>
    public static IReadOnlyList<int> DefaultSides { get; } = [64, 128, 256, 384, 512];

    /// <summary>Takes one probe in this process (call it in a fresh one).</summary>
    public static ProbeResult RunProbe(string upscalerDirectory, int side, ExecutionOptions? options, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(side);
        var folder = UpscalerFolder.Open(upscalerDirectory);
        _ = ExecutionProviders.Available; // ONNX Runtime's environment belongs to the baseline, not to the model.
        GC.Collect();
        var baseline = ProcessMemory.CurrentBytes;
        var clock = Stopwatch.StartNew();
        using var upscaler = new Upscaler(folder, options);
        var tile = new float[3 * side * side];
        for (var i = 0; i < tile.Length; i++)
        {
            tile[i] = (float)(0.5 + 0.5 * Math.Sin(i * 0.37));
        }

        upscaler.RunTileInPlace(tile, 1, 1);
        var loadSeconds = clock.Elapsed.TotalSeconds;
        GC.Collect();
        var loaded = ProcessMemory.CurrentBytes;
        cancellationToken.ThrowIfCancellationRequested();
        upscaler.RunTileInPlace(tile, side, side);
        ProcessMemory.TryResetPeak();
        clock.Restart();
        upscaler.RunTileInPlace(tile, side, side);
        var seconds = clock.Elapsed.TotalSeconds;
        var peak = ProcessMemory.PeakBytes;
        return new ProbeResult(baseline, Math.Max(0, loaded - baseline), Math.Max(0, peak - loaded), seconds, loadSeconds);
    }

    /// <summary>Fits the profile from probes of tile sides: weights and base as medians, activations and seconds linear in the tile's pixels.</summary>
    public static UpscalerMemoryProfile Fit(IReadOnlyList<(int Side, ProbeResult Result)> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0)
        {
            throw new ArgumentException("No probes to fit.", nameof(samples));
        }

        var points = samples.Select(s => (Rows: 1, Tokens: (double)s.Side * s.Side)).ToList();
        static long Median(IEnumerable<long> values)
        {
            var sorted = values.Order().ToArray();
            return sorted[sorted.Length / 2];
        }

        return new UpscalerMemoryProfile
        {
            Kind = MemoryProfile.Measured,
            Device = MemoryProfile.CpuDevice,
            Method = "Process peak RSS (VmHWM) of the second of two runs of one square tile per probe, each probe in a fresh process; " +
                "activation = peak − RSS after the session loaded and ran a 1×1 tile; fitted c0 + c1·n (n = tile pixels) on relative error.",
            BaseBytes = Median(samples.Select(s => s.Result.BaselineBytes)),
            Model = new ComponentProfile
            {
                WeightBytes = Median(samples.Select(s => s.Result.WeightBytes)),
                ActivationBytes = ScalingFit.Fit(points, [.. samples.Select(s => (double)Math.Max(s.Result.ActivationBytes, 1))], quadratic: false),
                Seconds = ScalingFit.Fit(points, [.. samples.Select(s => Math.Max(s.Result.Seconds, 1e-6))], quadratic: false),
                LoadSeconds = samples.Select(s => s.Result.LoadSeconds).Order().ElementAt(samples.Count / 2),
            },
        };
    }
}
