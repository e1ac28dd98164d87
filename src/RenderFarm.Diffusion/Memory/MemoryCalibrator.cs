using System.Diagnostics;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;

namespace RenderFarm.Diffusion.Memory;

/// <summary>The components a calibration probe can measure.</summary>
public enum CalibratedComponent
{
    TextEncoder,
    Unet,
    VaeDecoder,
    VaeEncoder,
}

/// <summary>One measurement to take: a component at a number of rows and a latent size.</summary>
public sealed record CalibrationProbe(CalibratedComponent Component, int Rows, int LatentHeight, int LatentWidth)
{
    /// <summary>Compact form for a command line: <c>unet:2:64:64</c>.</summary>
    public override string ToString() => $"{Component}:{Rows}:{LatentHeight}:{LatentWidth}".ToLowerInvariant();

    public static CalibrationProbe Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(':');
        if (parts.Length != 4 || !Enum.TryParse<CalibratedComponent>(parts[0], ignoreCase: true, out var component)
            || !int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var rows)
            || !int.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out var h)
            || !int.TryParse(parts[3], System.Globalization.CultureInfo.InvariantCulture, out var w))
        {
            throw new FormatException($"'{text}' is not a probe (component:rows:latentHeight:latentWidth, e.g. unet:2:64:64).");
        }

        return new CalibrationProbe(component, rows, h, w);
    }
}

/// <summary>What one probe measured, in bytes of process RSS and seconds.</summary>
public sealed record ProbeResult(long BaselineBytes, long WeightBytes, long ActivationBytes, double Seconds, double LoadSeconds);

/// <summary>
/// Measures a model folder's memory and time and fits a <see cref="MemoryProfile"/>. Each probe loads one component,
/// runs it twice at one size and keeps the second run's peak: the first includes one-off allocations (ONNX Runtime's
/// memory-pattern planning and arena growth; cuDNN's algorithm search on a GPU). Probes should each run in a fresh
/// process (<c>renderfarm plan --calibrate</c> spawns itself per probe) so no probe inherits another's retained memory.
/// </summary>
public static class MemoryCalibrator
{
    /// <summary>
    /// The probes of a calibration: the UNet at four latent sizes with two rows (CFG) and one size with one row, so
    /// the fit separates per-call, per-pixel (convolutions) and per-pixel² (attention) growth; both VAE halves at three
    /// sizes; the text encoder at one and two rows. Sizes stop at 64² latent (512² pixels), where the tiny model's
    /// attention already dominates, to keep a calibration under a minute on two cores.
    /// </summary>
    public static IReadOnlyList<CalibrationProbe> DefaultProbes { get; } =
    [
        new(CalibratedComponent.TextEncoder, 1, 1, 1),
        new(CalibratedComponent.TextEncoder, 2, 1, 1),
        new(CalibratedComponent.Unet, 2, 16, 16),
        new(CalibratedComponent.Unet, 2, 32, 32),
        new(CalibratedComponent.Unet, 2, 48, 48),
        new(CalibratedComponent.Unet, 2, 64, 64),
        new(CalibratedComponent.Unet, 1, 48, 48),
        new(CalibratedComponent.VaeDecoder, 1, 16, 16),
        new(CalibratedComponent.VaeDecoder, 1, 32, 32),
        new(CalibratedComponent.VaeDecoder, 1, 64, 64),
        new(CalibratedComponent.VaeEncoder, 1, 16, 16),
        new(CalibratedComponent.VaeEncoder, 1, 32, 32),
        new(CalibratedComponent.VaeEncoder, 1, 64, 64),
    ];

    /// <summary>Runs every probe through <paramref name="runProbe"/> (in a child process, ideally) and fits the profile.</summary>
    public static MemoryProfile Calibrate(ModelFolder model, Func<CalibrationProbe, CancellationToken, ProbeResult> runProbe,
        IProgress<string>? progress, CancellationToken cancellationToken, IReadOnlyList<CalibrationProbe>? probes = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(runProbe);
        var samples = new List<(CalibrationProbe Probe, ProbeResult Result)>();
        foreach (var probe in (probes ?? DefaultProbes).Where(p => p.Component != CalibratedComponent.VaeEncoder || model.HasVaeEncoder))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var result = runProbe(probe, cancellationToken);
            progress?.Report($"{probe}: weights {ByteSize.Format(result.WeightBytes)}, activations {ByteSize.Format(result.ActivationBytes)}, {result.Seconds:0.000} s");
            samples.Add((probe, result));
        }

        return Fit(model.Name, samples);
    }

    /// <summary>Fits the profile: per component, weights as the median, activations and seconds by relative least squares.</summary>
    public static MemoryProfile Fit(string modelName, IReadOnlyList<(CalibrationProbe Probe, ProbeResult Result)> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ComponentProfile Component(CalibratedComponent component, bool quadratic)
        {
            var mine = samples.Where(s => s.Probe.Component == component).ToList();
            if (mine.Count == 0)
            {
                return new ComponentProfile { WeightBytes = 0, ActivationBytes = Scaling.Zero, Seconds = Scaling.Zero };
            }

            var points = mine.Select(s => (s.Probe.Rows, Tokens: Tokens(s.Probe))).ToList();
            return new ComponentProfile
            {
                WeightBytes = Median(mine.Select(s => (double)s.Result.WeightBytes)),
                ActivationBytes = ScalingFit.Fit(points, mine.Select(s => (double)Math.Max(s.Result.ActivationBytes, 1)).ToList(), quadratic),
                Seconds = ScalingFit.Fit(points, mine.Select(s => Math.Max(s.Result.Seconds, 1e-6)).ToList(), quadratic),
                LoadSeconds = Median(mine.Select(s => s.Result.LoadSeconds)),
            };
        }

        return new MemoryProfile
        {
            Model = modelName,
            Kind = MemoryProfile.Measured,
            Device = MemoryProfile.CpuDevice,
            Method = "Process peak RSS (VmHWM) of the second of two runs per probe, reset with /proc/self/clear_refs, each probe in a fresh process; " +
                "activation = peak − RSS after the session loaded; fitted c0 + rows·(c1·n + c2·n²) by least squares on relative error.",
            BaseBytes = Median(samples.Select(s => (double)s.Result.BaselineBytes)),
            TextEncoder = Component(CalibratedComponent.TextEncoder, quadratic: false),
            Unet = Component(CalibratedComponent.Unet, quadratic: true),
            VaeDecoder = Component(CalibratedComponent.VaeDecoder, quadratic: true),
            VaeEncoder = Component(CalibratedComponent.VaeEncoder, quadratic: true),
            Samples = [.. samples.Select(s => new CalibrationSample(s.Probe.Component.ToString(), s.Probe.Rows, s.Probe.LatentHeight, s.Probe.LatentWidth,
                s.Result.WeightBytes, s.Result.ActivationBytes, s.Result.Seconds, s.Result.LoadSeconds))],
        };
    }

    private static double Tokens(CalibrationProbe probe) =>
        probe.Component == CalibratedComponent.TextEncoder ? 1 : (double)probe.LatentHeight * probe.LatentWidth;

    private static long Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? 0 : (long)sorted[sorted.Length / 2];
    }

    /// <summary>
    /// Takes one probe in this process: baseline RSS, load, RSS, run, reset the peak, run again, peak. Call it in a
    /// fresh process: what earlier work left resident would otherwise hide in the baseline.
    /// </summary>
    public static ProbeResult RunProbe(string modelDirectory, CalibrationProbe probe, ExecutionOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(probe);
        var model = ModelFolder.Open(modelDirectory);
        var execution = options ?? ExecutionOptions.Default;
        _ = ExecutionProviders.Available; // ONNX Runtime's environment belongs to the baseline, not to the component.
        GC.Collect();
        var baseline = ProcessMemory.CurrentBytes;

        var clock = Stopwatch.StartNew();
        Action run;
        OnnxComponent component;
        IDisposable? owned = null;
        switch (probe.Component)
        {
            case CalibratedComponent.TextEncoder:
            {
                var encoder = new TextEncoder(model.TextEncoderPath, execution);
                component = encoder.Component;
                component.Load();
                var rows = Enumerable.Range(0, probe.Rows).Select(_ => Enumerable.Repeat(320, 77).ToArray()).ToArray();
                if (model.IsXl)
                {
                    // SDXL's two encoders run in one stage and are loaded together: the profile's text encoder is both.
                    var encoder2 = new TextEncoder(model.TextEncoder2Path, execution);
                    encoder2.Component.Load();
                    owned = encoder2.Component;
                    string penultimate1 = encoder.PenultimateHiddenStates, penultimate2 = encoder2.PenultimateHiddenStates;
                    run = () =>
                    {
                        encoder.Encode(rows, penultimate1);
                        encoder2.Encode(rows, penultimate2, TextEncoder.TextEmbeds);
                    };
                }
                else
                {
                    run = () => encoder.Encode(rows);
                }

                break;
            }

            case CalibratedComponent.Unet:
            {
                var unet = new Unet(model.UnetPath, execution, addedConditioning: model.IsXl);
                component = unet.Component;
                component.Load();
                var dims = component.Input(Unet.EncoderHiddenStates).Dimensions;
                var width = dims[2] > 0 ? dims[2] : 768;
                var tokens = dims[1] > 0 ? dims[1] : 77;
                var pooledWidth = model.IsXl && component.Input(Unet.TextEmbeds).Dimensions[1] is var p and > 0 ? p : 1280;
                var conditioning = model.IsXl
                    ? new PromptConditioning(new float[probe.Rows * tokens * width], width, new float[probe.Rows * pooledWidth], pooledWidth,
                        new float[probe.Rows * PromptConditioning.TimeIdCount])
                    : new PromptConditioning(new float[probe.Rows * tokens * width], width);
                var binding = unet.Bind(probe.Rows, probe.LatentHeight, probe.LatentWidth, conditioning);
                owned = binding;
                Fill(binding.Input.Data);
                var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
                run = () => binding.Run(500, runOptions);
                break;
            }

            case CalibratedComponent.VaeDecoder:
            {
                var decoder = new VaeDecoder(model.VaeDecoderPath, execution);
                component = decoder.Component;
                component.Load();
                var latent = new float[probe.Rows * 4 * probe.LatentHeight * probe.LatentWidth];
                Fill(latent);
                run = () => decoder.Decode(latent, probe.LatentHeight, probe.LatentWidth);
                break;
            }

            default:
            {
                var encoder = new VaeEncoder(model.VaeEncoderPath, execution);
                component = encoder.Component;
                component.Load();
                var pixels = new float[3 * 64 * probe.LatentHeight * probe.LatentWidth];
                Fill(pixels);
                run = () => encoder.Encode(pixels, probe.LatentHeight * 8, probe.LatentWidth * 8);
                break;
            }
        }

        var loadSeconds = clock.Elapsed.TotalSeconds;
        try
        {
            GC.Collect();
            var loaded = ProcessMemory.CurrentBytes;
            cancellationToken.ThrowIfCancellationRequested();
            run();
            var resetWorked = ProcessMemory.TryResetPeak();
            cancellationToken.ThrowIfCancellationRequested();
            clock.Restart();
            run();
            var seconds = clock.Elapsed.TotalSeconds;
            var peak = ProcessMemory.PeakBytes;
            _ = resetWorked; // Without a reset the peak covers both runs; the second run's is never larger, so it is still the steady-state peak.
            return new ProbeResult(baseline, Math.Max(0, loaded - baseline), Math.Max(0, peak - loaded), seconds, loadSeconds);
        }
        finally
        {
            owned?.Dispose();
            component.Dispose();
        }
    }

    private static void Fill(float[] data)
    {
        // Values do not change memory; a deterministic spread avoids denormal slow paths that zeros or NaNs might take.
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (float)Math.Sin(i * 0.37);
        }
    }
}

/// <summary>Least squares of <c>c0 + rows·(c1·n + c2·n²)</c> on relative error, with every coefficient kept non-negative.</summary>
internal static class ScalingFit
{
    public static Scaling Fit(IReadOnlyList<(int Rows, double Tokens)> points, IReadOnlyList<double> values, bool quadratic)
    {
        // Try every subset of the terms; keep the best fit whose coefficients are all ≥ 0 (a tiny active-set NNLS).
        var termSets = quadratic
            ? new[] { new[] { 0, 1, 2 }, [0, 1], [0, 2], [1, 2], [0], [1], [2] }
            : [[0, 1], [0], [1]];
        Scaling? best = null;
        var bestError = double.MaxValue;
        foreach (var terms in termSets)
        {
            if (terms.Length > points.Count)
            {
                continue;
            }

            var coefficients = Solve(points, values, terms);
            if (coefficients is null || coefficients.Any(c => c < 0))
            {
                continue;
            }

            var full = new double[3];
            for (var i = 0; i < terms.Length; i++)
            {
                full[terms[i]] = coefficients[i];
            }

            var scaling = new Scaling(full[0], full[1], full[2]);
            var error = 0.0;
            for (var i = 0; i < points.Count; i++)
            {
                var r = (scaling.Evaluate(points[i].Rows, points[i].Tokens) - values[i]) / values[i];
                error += r * r;
            }

            if (error < bestError - 1e-12)
            {
                bestError = error;
                best = scaling;
            }
        }

        return best ?? new Scaling(values.Max(), 0, 0);
    }

    private static double Term(int term, int rows, double tokens) => term switch
    {
        0 => 1,
        1 => rows * tokens,
        _ => rows * tokens * tokens,
    };

    private static double[]? Solve(IReadOnlyList<(int Rows, double Tokens)> points, IReadOnlyList<double> values, int[] terms)
    {
        var k = terms.Length;
        var a = new double[k, k];
        var b = new double[k];
        for (var i = 0; i < points.Count; i++)
        {
            var weight = 1 / values[i];
            var row = terms.Select(t => Term(t, points[i].Rows, points[i].Tokens) * weight).ToArray();
            for (var p = 0; p < k; p++)
            {
                b[p] += row[p] * values[i] * weight;
                for (var q = 0; q < k; q++)
                {
                    a[p, q] += row[p] * row[q];
                }
            }
        }

        // Gaussian elimination with partial pivoting on the k×k normal equations (k ≤ 3).
        for (var col = 0; col < k; col++)
        {
            var pivot = Enumerable.Range(col, k - col).MaxBy(r => Math.Abs(a[r, col]));
            if (Math.Abs(a[pivot, col]) < 1e-300)
            {
                return null;
            }

            for (var c = 0; c < k; c++)
            {
                (a[col, c], a[pivot, c]) = (a[pivot, c], a[col, c]);
            }

            (b[col], b[pivot]) = (b[pivot], b[col]);
            for (var r = col + 1; r < k; r++)
            {
                var f = a[r, col] / a[col, col];
                for (var c = col; c < k; c++)
                {
                    a[r, c] -= f * a[col, c];
                }

                b[r] -= f * b[col];
            }
        }

        var x = new double[k];
        for (var r = k - 1; r >= 0; r--)
        {
            var sum = b[r];
            for (var c = r + 1; c < k; c++)
            {
                sum -= a[r, c] * x[c];
            }

            x[r] = sum / a[r, r];
        }

        return x;
    }
}
