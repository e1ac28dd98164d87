using BenchmarkDotNet.Running;
using RenderFarm.Benchmarks;

if (args is ["interleaved", ..])
{
    // BenchmarkDotNet measures one method's iterations, then the other's: on a shared VM the drift between those two
    // blocks is larger than the 1–2 % being measured. Alternating the two, pair by pair, cancels the drift.
    var rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 15;
    InterleavedStepHarness.Run([512, 1024], rounds, Console.Out);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
