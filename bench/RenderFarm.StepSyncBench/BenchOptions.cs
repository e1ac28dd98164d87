using System.Globalization;

namespace RenderFarm.StepSyncBench;

/// <summary>The harness's command line, validated: a bad value is an <see cref="ArgumentException"/> naming the option.</summary>
internal sealed record BenchOptions
{
    public int Size { get; init; } = 1024;
    public int Window { get; init; } = 64;
    public int Overlap { get; init; } = 16;
    public int Steps { get; init; } = 5;
    public int Repetitions { get; init; } = 5;
    public int Participants { get; init; } = 2;
    /// <summary>
    /// SD 1.5's time for one 64² latent window step with guidance (batch 2) on a data-centre GPU, for the 8192²
    /// arithmetic: 32 ms ≈ 1 / 31.2 it/s, Diffusers with torch 2.1 SDPA on an A100 at 512²
    /// (fal-ai/stable-diffusion-benchmarks). A faster GPU makes the traffic's share larger, so a fast figure is the
    /// conservative one.
    /// </summary>
    public double Sd15WindowMs { get; init; } = 32;
    public string? Model { get; init; }

    public const string Usage =
        "usage: RenderFarm.StepSyncBench [--size 1024] [--window 64] [--overlap 16] [--steps 5] [--repetitions 5] " +
        "[--participants 2] [--sd15-window-ms 32] [--model DIR]";

    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"{name} needs a value.");
            }

            var value = args[++i];
            options = name switch
            {
                "--size" => options with { Size = Int(name, value, 64, 4096) },
                "--window" => options with { Window = Int(name, value, 8, 512) },
                "--overlap" => options with { Overlap = Int(name, value, 0, 511) },
                "--steps" => options with { Steps = Int(name, value, 1, 1000) },
                "--repetitions" => options with { Repetitions = Int(name, value, 1, 1000) },
                "--participants" => options with { Participants = Int(name, value, 2, 64) },
                "--sd15-window-ms" => options with { Sd15WindowMs = Number(name, value) },
                "--model" => options with { Model = value },
                _ => throw new ArgumentException($"unknown option {name}."),
            };
        }

        if (options.Size % 8 != 0)
        {
            throw new ArgumentException($"--size must be a multiple of 8 (got {options.Size}).");
        }

        if (options.Overlap >= options.Window)
        {
            throw new ArgumentException($"--overlap must be smaller than --window (got {options.Overlap} ≥ {options.Window}).");
        }

        var latent = options.Size / 8;
        var windows = new RenderFarm.Diffusion.Memory.TileSize(options.Window, options.Overlap).Count(latent, latent);
        if (windows < options.Participants)
        {
            throw new ArgumentException(
                $"a {options.Size}² image has {windows} window(s) of {options.Window} latent pixels: fewer than --participants {options.Participants}.");
        }

        return options;
    }

    private static int Int(string name, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"{name} must be a whole number in [{min}, {max}] (got '{value}').");

    private static double Number(string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n > 0 && double.IsFinite(n)
            ? n
            : throw new ArgumentException($"{name} must be a positive number (got '{value}').");
}
