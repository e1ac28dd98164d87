using RenderFarm.StepSyncBench;

// Step-synchronous distributed MultiDiffusion, measured (issue 6): one participant running every window against
// several participants that each run their share and meet at a barrier every step, with fp16 window traffic.
//   dotnet run -c Release --project bench/RenderFarm.StepSyncBench -- [--size 1024] [--steps 5] [--repetitions 5]
// Exit codes: 0 measured and (b) reproduces (a); 1 (b) differs from (a) beyond the fp16 bound; 2 invalid options.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

return await Harness.RunAsync(options, Console.Out).ConfigureAwait(false);
