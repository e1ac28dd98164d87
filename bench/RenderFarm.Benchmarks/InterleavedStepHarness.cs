using System.Diagnostics;
using System.Globalization;

namespace RenderFarm.Benchmarks;

/// <summary>
/// The engine step and the bare UNet run of <see cref="DenoisingStepBenchmarks"/>, timed in alternating pairs
/// (the order flips every round), reported as the median of the per-pair ratios.
/// </summary>
public static class InterleavedStepHarness
{
    public static void Run(IReadOnlyList<int> sizes, int rounds, TextWriter output)
    {
        output.WriteLine("| size | bare Run, median | engine step, median | engine / bare, median of pairs | min … max of pair ratios | rounds |");
        output.WriteLine("|---|---|---|---|---|---|");
        foreach (var size in sizes)
        {
            var bench = new DenoisingStepBenchmarks { Size = size };
            bench.Setup();
            try
            {
                bench.BareRun();
                bench.EngineStep();
                var bare = new List<double>();
                var engine = new List<double>();
                for (var round = 0; round < rounds; round++)
                {
                    if (round % 2 == 0)
                    {
                        bare.Add(Time(bench.BareRun));
                        engine.Add(Time(bench.EngineStep));
                    }
                    else
                    {
                        engine.Add(Time(bench.EngineStep));
                        bare.Add(Time(bench.BareRun));
                    }
                }

                var ratios = bare.Zip(engine, (b, e) => e / b).Order().ToList();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {size}² | {Median(bare):0.0} ms | {Median(engine):0.0} ms | {Median(ratios):0.000} | {ratios[0]:0.000} … {ratios[^1]:0.000} | {rounds} |"));
            }
            finally
            {
                bench.Cleanup();
            }
        }
    }

    private static double Time(Action action)
    {
        var start = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
