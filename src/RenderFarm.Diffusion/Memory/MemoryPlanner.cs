using System.Globalization;

namespace RenderFarm.Diffusion.Memory;

/// <summary>What a render asks of memory: its size, batch, guidance (two UNet rows per image) and steps.</summary>
public sealed record RenderShape(int Width, int Height, int Batch = 1, bool Guidance = true, int Steps = 20, bool EncodesImage = false)
{
    public int LatentHeight => Height / 8;
    public int LatentWidth => Width / 8;
    public int LatentPixels => LatentHeight * LatentWidth;
    /// <summary>UNet rows per step: both CFG halves of every image.</summary>
    public int ModelRows => Guidance ? 2 * Batch : Batch;
}

/// <summary>Predicted peak bytes and seconds of one render under one strategy, with where the peak comes from.</summary>
public sealed record MemoryPrediction(long PeakBytes, double Seconds, string PeakPhase, long EngineHostBytes);

/// <summary>One strategy the planner tried, what it predicted, and why it was taken or rejected.</summary>
public sealed record PlanCandidate(MemoryStrategy Strategy, MemoryPrediction Prediction, bool Fits, string Reason);

/// <summary>The planner's answer: the chosen strategy (null when nothing fits), its prediction, and everything it tried.</summary>
public sealed record MemoryPlan(
    bool Fits,
    MemoryStrategy? Strategy,
    long PredictedPeakBytes,
    double PredictedSeconds,
    string Reason,
    long BudgetBytes,
    RenderShape Shape,
    string ProfileKind,
    IReadOnlyList<PlanCandidate> Considered);

/// <summary>The settings the planner may choose from, largest (fastest) first.</summary>
public sealed record PlannerOptions
{
    /// <summary>Latent-tiling windows in latent pixels, tried largest first (each must be smaller than the latent to help).</summary>
    public IReadOnlyList<int> LatentWindows { get; init; } = [96, 64, 48, 32, 24, 16];
    /// <summary>Tiled-VAE tiles in latent pixels, tried largest first.</summary>
    public IReadOnlyList<int> VaeTiles { get; init; } = [64, 32, 16];
    /// <summary>Overlap of neighbouring windows/tiles as a fraction of their size.</summary>
    public double Overlap { get; init; } = 0.25;

    public static PlannerOptions Default { get; } = new();

    public TileSize Tile(int size) => new(size, Math.Max(1, (int)Math.Round(size * Overlap)));
}

/// <summary>
/// Predicts a render's peak memory and time from a <see cref="MemoryProfile"/> and picks the cheapest strategy set
/// that fits a budget. "Cheapest" is fidelity first, then time: the first rungs render exactly the resident image
/// (they only move or split work), tiled VAE is within a stated tolerance of it, and latent tiling is a different
/// image on a real model (windows see only their part of the latent), so it comes last even though it can be faster
/// where attention dominates. The order tried, the first that fits being chosen:
/// <list type="number">
/// <item><c>resident</c>: every session loaded at once.</item>
/// <item><c>+batch-split</c>: CFG's halves (then single rows) in separate UNet calls; only when a step has &gt; 1 row.</item>
/// <item><c>+vae-cpu</c>: on a GPU, the VAE's weights and activations leave device memory (skipped on a CPU device,
/// where it would save nothing).</item>
/// <item><c>sequential</c>: one session loaded at a time.</item>
/// <item><c>sequential, tiled-vae</c>: VAE tiles shrinking 64 → 32 → 16 latent pixels.</item>
/// <item><c>sequential, tiled-vae, latent-tiling</c>: UNet windows shrinking 96 → 64 → 48 → 32 → 24 → 16.</item>
/// </list>
/// Batch splitting is added to any step whose batched UNet call is what does not fit.
/// </summary>
public sealed class MemoryPlanner(MemoryProfile profile, PlannerOptions? options = null)
{
    private readonly PlannerOptions _options = options ?? PlannerOptions.Default;

    public MemoryProfile Profile => profile;

    /// <summary>Peak bytes (of the profile's device) and seconds of <paramref name="shape"/> rendered with <paramref name="strategy"/>.</summary>
    public MemoryPrediction Predict(RenderShape shape, MemoryStrategy strategy)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(strategy);
        var lh = shape.LatentHeight;
        var lw = shape.LatentWidth;
        double area = shape.LatentPixels;
        var rows = shape.ModelRows;
        var rowsPerCall = strategy.RowsPerCall(rows);
        var groups = (rows + rowsPerCall - 1) / rowsPerCall;
        var lastGroup = rows - (groups - 1) * rowsPerCall;

        var tiled = strategy.Has(MemoryStrategies.LatentTiling);
        var windowTokens = tiled ? (double)Math.Min(strategy.LatentWindow.Size, lh) * Math.Min(strategy.LatentWindow.Size, lw) : area;
        var windows = tiled ? strategy.LatentWindow.Count(lh, lw) : 1;
        var vaeTiled = strategy.Has(MemoryStrategies.TiledVae);
        var vaeTokens = vaeTiled ? (double)Math.Min(strategy.VaeTile.Size, lh) * Math.Min(strategy.VaeTile.Size, lw) : area;
        var vaeTiles = vaeTiled ? strategy.VaeTile.Count(lh, lw) : 1;
        // A tiled pass first gathers GroupNorm statistics from a stand-in no larger than one tile (Models/SharedGroupNorm).
        var vaeRuns = vaeTiles > 1 ? vaeTiles + 1 : vaeTiles;
        var vaeOffDevice = strategy.Has(MemoryStrategies.VaeCpu) && !profile.IsCpu;

        var te = profile.TextEncoder;
        var unet = profile.Unet;
        var dec = profile.VaeDecoder;
        var enc = profile.VaeEncoder;
        double teAct = te.ActivationBytes.Evaluate(rows, 1);
        double unetAct = unet.ActivationBytes.Evaluate(rowsPerCall, windowTokens);
        double decAct = vaeOffDevice ? 0 : dec.ActivationBytes.Evaluate(1, vaeTokens);
        double encAct = !shape.EncodesImage || vaeOffDevice ? 0 : enc.ActivationBytes.Evaluate(1, vaeTokens);
        double decWeights = vaeOffDevice ? 0 : dec.WeightBytes;
        double encWeights = !shape.EncodesImage || vaeOffDevice ? 0 : enc.WeightBytes;

        var engine = EngineHostBytes(shape, vaeTiled);
        var onDeviceEngine = profile.IsCpu ? engine : 0;

        (string Phase, double Bytes)[] phases = strategy.Has(MemoryStrategies.Sequential)
            ?
            [
                ("text encoder", te.WeightBytes + teAct),
                ("UNet", unet.WeightBytes + unetAct),
                ("VAE decoder", decWeights + decAct),
                ("VAE encoder", encWeights + encAct),
            ]
            :
            [
                ("text encoder", te.WeightBytes + unet.WeightBytes + decWeights + encWeights + teAct),
                ("UNet", te.WeightBytes + unet.WeightBytes + decWeights + encWeights + unetAct),
                ("VAE decoder", te.WeightBytes + unet.WeightBytes + decWeights + encWeights + decAct),
                ("VAE encoder", te.WeightBytes + unet.WeightBytes + decWeights + encWeights + encAct),
            ];
        var peak = phases.MaxBy(p => p.Bytes);

        var unetStep = windows * ((groups - 1) * unet.Seconds.Evaluate(rowsPerCall, windowTokens) + unet.Seconds.Evaluate(lastGroup, windowTokens));
        var vaeSlowdown = strategy.Has(MemoryStrategies.VaeCpu) ? profile.VaeCpuSlowdown : 1;
        var seconds = te.Seconds.Evaluate(rows, 1)
            + shape.Steps * unetStep
            + shape.Batch * vaeRuns * dec.Seconds.Evaluate(1, vaeTokens) * vaeSlowdown
            + (shape.EncodesImage ? vaeRuns * enc.Seconds.Evaluate(1, vaeTokens) * vaeSlowdown : 0)
            + (strategy.Has(MemoryStrategies.Sequential)
                ? te.LoadSeconds + unet.LoadSeconds + dec.LoadSeconds + (shape.EncodesImage ? enc.LoadSeconds : 0)
                : 0);

        return new MemoryPrediction((long)(profile.BaseBytes + peak.Bytes + onDeviceEngine), seconds, peak.Phase, (long)engine);
    }

    /// <summary>Chooses the cheapest strategy that fits <paramref name="budgetBytes"/>, trying the documented order.</summary>
    public MemoryPlan Plan(RenderShape shape, long budgetBytes)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        var considered = new List<PlanCandidate>();
        foreach (var candidate in Ladder(shape, budgetBytes))
        {
            var prediction = Predict(shape, candidate);
            var fits = prediction.PeakBytes <= budgetBytes;
            var reason = fits
                ? $"fits: {ByteSize.Format(prediction.PeakBytes)} of {ByteSize.Format(budgetBytes)}"
                : $"needs {ByteSize.Format(prediction.PeakBytes)} > budget {ByteSize.Format(budgetBytes)} (peak in the {prediction.PeakPhase})";
            considered.Add(new PlanCandidate(candidate, prediction, fits, reason));
            if (fits)
            {
                return new MemoryPlan(true, candidate, prediction.PeakBytes, prediction.Seconds,
                    $"{string.Join(", ", candidate.Names)} {reason}", budgetBytes, shape, profile.Kind, considered);
            }
        }

        var smallest = considered.MinBy(c => c.Prediction.PeakBytes)!;
        var floor = profile.BaseBytes + Math.Max(profile.Unet.WeightBytes, profile.TextEncoder.WeightBytes);
        var why = floor > budgetBytes
            ? $"nothing fits: the UNet's weights and the runtime alone need {ByteSize.Format(floor)} > budget {ByteSize.Format(budgetBytes)}"
            : $"nothing fits: the smallest candidate ({smallest.Strategy}) needs {ByteSize.Format(smallest.Prediction.PeakBytes)} > budget {ByteSize.Format(budgetBytes)} (peak in the {smallest.Prediction.PeakPhase})";
        return new MemoryPlan(false, null, smallest.Prediction.PeakBytes, smallest.Prediction.Seconds, why, budgetBytes, shape, profile.Kind, considered);
    }

    /// <summary>
    /// The largest square side (multiple of 8, at most <paramref name="maxSide"/>) that fits the budget: with any
    /// strategy the planner may choose (<paramref name="strategy"/> null) or with that one fixed, and within
    /// <paramref name="maxSeconds"/> when given. 0 when not even 8×8 fits.
    /// </summary>
    public int LargestSquare(long budgetBytes, int batch = 1, bool guidance = true, MemoryStrategy? strategy = null, double? maxSeconds = null, int maxSide = 16384)
    {
        bool Fits(int side)
        {
            var shape = new RenderShape(side, side, batch, guidance);
            if (strategy is null)
            {
                var plan = Plan(shape, budgetBytes);
                return plan.Fits && (maxSeconds is null || plan.PredictedSeconds <= maxSeconds);
            }

            var prediction = Predict(shape, strategy);
            return prediction.PeakBytes <= budgetBytes && (maxSeconds is null || prediction.Seconds <= maxSeconds);
        }

        // Memory and time grow with size under every strategy, so the fitting sizes are a prefix: bisect it.
        int lo = 0, hi = maxSide / 8;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (Fits(mid * 8))
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return lo * 8;
    }

    private IEnumerable<MemoryStrategy> Ladder(RenderShape shape, long budgetBytes)
    {
        var rows = shape.ModelRows;
        var maxLatent = Math.Max(shape.LatentHeight, shape.LatentWidth);
        IEnumerable<MemoryStrategy> WithSplits(MemoryStrategy s)
        {
            yield return s;
            // Halves first (CFG's unconditional and conditional rows apart), then single rows.
            foreach (var r in new[] { (rows + 1) / 2, 1 }.Distinct().Where(r => r < rows))
            {
                yield return s with { Strategies = s.Strategies | MemoryStrategies.BatchSplit, UnetRowsPerCall = r };
            }
        }

        foreach (var s in WithSplits(MemoryStrategy.Resident))
        {
            yield return s;
        }

        if (!profile.IsCpu)
        {
            foreach (var s in WithSplits(new MemoryStrategy { Strategies = MemoryStrategies.VaeCpu }))
            {
                yield return s;
            }
        }

        var sequential = new MemoryStrategy { Strategies = MemoryStrategies.Sequential };
        foreach (var s in WithSplits(sequential))
        {
            yield return s;
        }

        var vaeTiles = _options.VaeTiles.Where(t => t < maxLatent).Select(_options.Tile).ToList();
        foreach (var tile in vaeTiles)
        {
            foreach (var s in WithSplits(sequential with { Strategies = MemoryStrategies.Sequential | MemoryStrategies.TiledVae, VaeTile = tile }))
            {
                yield return s;
            }
        }

        // With latent tiling the VAE phase is independent of the window: give it the largest tile that fits on its own.
        var bestTile = vaeTiles.FirstOrDefault(t => VaePhaseFits(shape, t, budgetBytes), vaeTiles.Count > 0 ? vaeTiles[^1] : MemoryStrategy.DefaultVaeTile);
        foreach (var window in _options.LatentWindows.Where(w => w < maxLatent))
        {
            var strategies = MemoryStrategies.Sequential | MemoryStrategies.LatentTiling | (vaeTiles.Count > 0 ? MemoryStrategies.TiledVae : 0);
            foreach (var s in WithSplits(sequential with { Strategies = strategies, VaeTile = bestTile, LatentWindow = _options.Tile(window) }))
            {
                yield return s;
            }
        }
    }

    private bool VaePhaseFits(RenderShape shape, TileSize tile, long budgetBytes)
    {
        var tokens = (double)Math.Min(tile.Size, shape.LatentHeight) * Math.Min(tile.Size, shape.LatentWidth);
        var bytes = profile.BaseBytes + profile.VaeDecoder.WeightBytes + profile.VaeDecoder.ActivationBytes.Evaluate(1, tokens)
            + (profile.IsCpu ? EngineHostBytes(shape, vaeTiled: true) : 0);
        return bytes <= budgetBytes;
    }

    /// <summary>
    /// The engine's own buffers (counted analytically, not calibrated): per latent pixel the latents, noise, guided
    /// prediction and step noise of each image and the UNet's input and output of each row (float32); the decoded
    /// image in float (12 B per image pixel) and as RGB bytes for every image of the batch; the tiled VAE's weight
    /// and accumulation planes; and ~20 B per pixel of transient managed copies (tile outputs, the RGB conversion)
    /// that the GC holds until its next collection — measured: a 2048² latent-tiled render peaked 85 MiB above the
    /// buffers alone.
    /// </summary>
    public static long EngineHostBytes(RenderShape shape, bool vaeTiled)
    {
        ArgumentNullException.ThrowIfNull(shape);
        double latent = shape.LatentPixels;
        double pixels = (double)shape.Width * shape.Height;
        var denoise = 4 * 4 * latent * (4 * shape.Batch + 2 * shape.ModelRows);
        var decode = 32 * pixels + 3 * pixels * shape.Batch + (vaeTiled ? 4 * pixels : 0);
        return (long)(denoise + decode);
    }

    /// <summary>A one-line summary for logs.</summary>
    public static string Describe(MemoryPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return plan.Fits
            ? string.Create(CultureInfo.InvariantCulture, $"{plan.Strategy}: {ByteSize.Format(plan.PredictedPeakBytes)} predicted, {plan.PredictedSeconds:0.0} s")
            : plan.Reason;
    }
}
