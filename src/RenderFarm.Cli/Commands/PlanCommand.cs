using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;

namespace RenderFarm.Cli.Commands;

/// <summary>
/// <c>renderfarm plan --width W --height H [--budget 8GiB]</c>: which memory strategy a render needs, its predicted
/// peak and time, and every alternative the planner rejected. <c>--calibrate</c> measures the model first (each probe
/// in a child process) and stores <c>renderfarm-memory.json</c> beside it. Exit 0 when it fits, 1 when nothing fits,
/// 2 on bad input.
/// </summary>
internal static class PlanCommand
{
    /// <summary>Built-in predicted profiles, for planning real models this machine cannot hold or measure.</summary>
    private static readonly Dictionary<string, Func<MemoryProfile>> BuiltIn = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sd15"] = () => MemoryProfile.StableDiffusion15(2),
        ["sd15-fp32"] = () => MemoryProfile.StableDiffusion15(4),
    };

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Create()
    {
        var width = new Option<int>("--width") { Description = "Image width in pixels, a multiple of 8.", DefaultValueFactory = _ => 512 };
        var height = new Option<int>("--height") { Description = "Image height in pixels, a multiple of 8.", DefaultValueFactory = _ => 512 };
        var budget = new Option<string?>("--budget") { Description = "Memory budget (8GiB, 512MiB, 6GB or bytes). Default: this machine's memory (CPU profiles)." };
        var model = new Option<string?>("--model") { Description = "Model folder (default: the tiny model), or sd15 / sd15-fp32 for Stable Diffusion 1.5's predicted GPU profile." };
        var batch = new Option<int>("--batch") { Description = "Images denoised together.", DefaultValueFactory = _ => 1 };
        var steps = new Option<int>("--steps") { Description = "Denoising steps (for the time estimate).", DefaultValueFactory = _ => 20 };
        var guidance = new Option<double>("--guidance") { Description = "Guidance scale; above 1 doubles the UNet's rows.", DefaultValueFactory = _ => 7.5 };
        var json = new Option<bool>("--json") { Description = "Print the plan as JSON." };
        var calibrate = new Option<bool>("--calibrate") { Description = "Measure the model's memory first (a minute on two cores) and store renderfarm-memory.json beside it." };
        var probe = new Option<string?>("--probe") { Description = "Internal: take one calibration probe in this process.", Hidden = true };

        var command = new Command("plan", "Predict a render's peak memory and choose the cheapest memory strategy that fits a budget.")
        {
            width, height, budget, model, batch, steps, guidance, json, calibrate, probe,
        };
        command.SetAction((result, cancellationToken) => RunAsync(result, new Options(
            result.GetValue(width), result.GetValue(height), result.GetValue(budget), result.GetValue(model), result.GetValue(batch),
            result.GetValue(steps), result.GetValue(guidance), result.GetValue(json), result.GetValue(calibrate), result.GetValue(probe)), cancellationToken));
        return command;
    }

    private sealed record Options(int Width, int Height, string? Budget, string? Model, int Batch, int Steps, double Guidance, bool Json, bool Calibrate, string? Probe);

    private static async Task<int> RunAsync(ParseResult result, Options o, CancellationToken cancellationToken)
    {
        if (o.Probe is not null)
        {
            return RunProbe(result, o);
        }

        var errors = Validate(o);
        if (errors.Count > 0)
        {
            foreach (var error in errors)
            {
                result.Error().WriteLine($"error: {error}");
            }

            return ExitCodes.InvalidInput;
        }

        MemoryProfile profile;
        try
        {
            profile = await LoadProfileAsync(result, o, cancellationToken);
        }
        catch (Exception ex) when (ex is ModelFormatException or InvalidDataException or DirectoryNotFoundException or FileNotFoundException)
        {
            return result.Fail(ExitCodes.InvalidInput, ex.Message);
        }

        long budgetBytes;
        if (o.Budget is not null)
        {
            budgetBytes = ByteSize.Parse(o.Budget);
        }
        else if (profile.IsCpu)
        {
            budgetBytes = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        }
        else
        {
            return result.Fail(ExitCodes.InvalidInput, $"budget: the {profile.Model} profile is for a GPU; give its memory with --budget (e.g. --budget 8GiB).");
        }

        var planner = new MemoryPlanner(profile);
        var shape = new RenderShape(o.Width, o.Height, o.Batch, o.Guidance > 1.0, o.Steps);
        var plan = planner.Plan(shape, budgetBytes);
        var largest = planner.LargestSquare(budgetBytes, o.Batch, shape.Guidance);
        if (o.Json)
        {
            result.Out().WriteLine(JsonSerializer.Serialize(ToJson(plan, profile, largest), Json));
        }
        else
        {
            WriteText(result.Out(), plan, profile, largest);
        }

        return plan.Fits ? ExitCodes.Success : ExitCodes.Failure;
    }

    private static List<string> Validate(Options o)
    {
        var errors = new List<string>();
        if (o.Width < 8 || o.Width % 8 != 0)
        {
            errors.Add($"width: must be a positive multiple of 8 (got {o.Width}).");
        }

        if (o.Height < 8 || o.Height % 8 != 0)
        {
            errors.Add($"height: must be a positive multiple of 8 (got {o.Height}).");
        }

        if (o.Batch < 1)
        {
            errors.Add($"batch: must be at least 1 (got {o.Batch}).");
        }

        if (o.Steps is < 1 or > 1000)
        {
            errors.Add($"steps: must be between 1 and 1000 (got {o.Steps}).");
        }

        if (o.Budget is not null && !ByteSize.TryParse(o.Budget, out _, out var budgetError))
        {
            errors.Add($"budget: {budgetError}.");
        }

        if (o.Calibrate && o.Model is not null && BuiltIn.ContainsKey(o.Model))
        {
            errors.Add($"calibrate: '{o.Model}' is a predicted profile with no weights here to measure.");
        }

        return errors;
    }

    private static async Task<MemoryProfile> LoadProfileAsync(ParseResult result, Options o, CancellationToken cancellationToken)
    {
        if (o.Model is not null && BuiltIn.TryGetValue(o.Model, out var builtIn))
        {
            return builtIn();
        }

        var directory = ModelLocator.Resolve(o.Model);
        var model = ModelFolder.Open(directory);
        if (o.Calibrate)
        {
            var (fileName, prefix) = ProbeProcess.Self("renderfarm");
            var profile = MemoryCalibrator.Calibrate(model,
                (probe, ct) => ProbeProcess.RunAsync<ProbeResult>(fileName, [.. prefix, "plan", "--model", model.Root, "--probe", probe.ToString()], ct)
                    .GetAwaiter().GetResult(),
                new SynchronousProgress(line => result.Error().WriteLine("calibrate: " + line)), cancellationToken);
            profile.Save(model.Root);
            result.Error().WriteLine($"calibrate: wrote {MemoryProfile.PathFor(model.Root)}");
            return profile;
        }

        return MemoryProfile.TryLoad(model.Root)
            ?? throw new InvalidDataException($"model: '{model.Root}' has no memory profile ({MemoryProfile.FileName}); run `renderfarm plan --calibrate --model {model.Root}` once.");
    }

    private static int RunProbe(ParseResult result, Options o)
    {
        try
        {
            var probe = CalibrationProbe.Parse(o.Probe!);
            var measured = MemoryCalibrator.RunProbe(ModelLocator.Resolve(o.Model), probe, options: null, CancellationToken.None);
            result.Out().WriteLine(ProbeProcess.Write(measured));
            return ExitCodes.Success;
        }
        catch (Exception ex) when (ex is FormatException or ModelFormatException)
        {
            return result.Fail(ExitCodes.InvalidInput, ex.Message);
        }
    }

    private static object ToJson(MemoryPlan plan, MemoryProfile profile, int largest) => new
    {
        fits = plan.Fits,
        strategy = plan.Strategy?.Names ?? [],
        predictedPeakBytes = plan.PredictedPeakBytes,
        predictedSeconds = Math.Round(plan.PredictedSeconds, 3),
        reason = plan.Reason,
        budgetBytes = plan.BudgetBytes,
        width = plan.Shape.Width,
        height = plan.Shape.Height,
        batch = plan.Shape.Batch,
        model = profile.Model,
        profileKind = profile.Kind,
        device = profile.Device,
        settings = plan.Strategy is null ? null : Settings(plan.Strategy),
        largestSquare = largest,
        alternatives = plan.Considered.Select(c => new
        {
            strategy = c.Strategy.Names,
            settings = Settings(c.Strategy),
            predictedPeakBytes = c.Prediction.PeakBytes,
            predictedSeconds = Math.Round(c.Prediction.Seconds, 3),
            fits = c.Fits,
            reason = c.Reason,
        }),
    };

    private static object Settings(MemoryStrategy s) => new
    {
        unetRowsPerCall = s.Has(MemoryStrategies.BatchSplit) ? s.UnetRowsPerCall : (int?)null,
        vaeTile = s.Has(MemoryStrategies.TiledVae) ? s.VaeTile.ToString() : null,
        latentWindow = s.Has(MemoryStrategies.LatentTiling) ? s.LatentWindow.ToString() : null,
    };

    private static void WriteText(TextWriter output, MemoryPlan plan, MemoryProfile profile, int largest)
    {
        var s = plan.Shape;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"model {profile.Model} ({profile.Kind} profile, {profile.Device}), {s.Width}x{s.Height}, batch {s.Batch}, {s.Steps} steps, budget {ByteSize.Format(plan.BudgetBytes)}"));
        output.WriteLine(plan.Fits
            ? string.Create(CultureInfo.InvariantCulture, $"strategy: {plan.Strategy} — predicted peak {ByteSize.Format(plan.PredictedPeakBytes)}, {plan.PredictedSeconds:0.0} s")
            : $"does not fit: {plan.Reason}");
        output.WriteLine("considered:");
        foreach (var c in plan.Considered)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {c.Strategy,-60} {ByteSize.Format(c.Prediction.PeakBytes),11} {c.Prediction.Seconds,9:0.0} s  {(c.Fits ? "chosen" : "rejected")}: {c.Reason}"));
        }

        output.WriteLine(largest > 0 ? $"largest square image that fits this budget: {largest}x{largest}" : "no image size fits this budget");
    }

    /// <summary>Reports on the calling thread, in order (<see cref="Progress{T}"/> posts to the thread pool).</summary>
    private sealed class SynchronousProgress(Action<string> report) : IProgress<string>
    {
        public void Report(string value) => report(value);
    }
}
