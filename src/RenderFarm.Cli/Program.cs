using System.CommandLine;
using RenderFarm.Cli;

return await CliApp.Create().Parse(args).InvokeAsync(new InvocationConfiguration(), CancellationToken.None);
