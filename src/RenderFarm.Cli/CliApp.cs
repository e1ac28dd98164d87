using System.CommandLine;
using RenderFarm.Cli.Commands;

namespace RenderFarm.Cli;

/// <summary>The <c>renderfarm</c> command tree.</summary>
internal static class CliApp
{
    public static RootCommand Create()
    {
        var root = new RootCommand("RenderFarm: Stable Diffusion on ONNX Runtime, from one machine to a fleet of GPUs.");
        root.Add(RenderCommand.Create());
        root.Add(TokenizeCommand.Create());
        root.Add(ModelsCommand.Create());
        root.Add(PlanCommand.Create());
        root.Add(ServeCommand.Create());
        root.Add(SubmitCommand.Create());
        root.Add(StatusCommand.Create());
        root.Add(FetchCommand.Create());
        root.Add(JobsCommand.Create());
        root.Add(WorkersCommand.Create());
        root.Add(DbCommand.Create());
        return root;
    }

    /// <summary>Runs the CLI in-process with its output captured (tests; the same path as <c>Main</c>).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var configuration = new InvocationConfiguration { Output = output, Error = error };
        return await Create().Parse(args).InvokeAsync(configuration, cancellationToken);
    }
}

/// <summary>Process exit codes: scripts tell a bad request from a failed render.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    /// <summary>The request itself is wrong (validation, missing files): fix the command line.</summary>
    public const int InvalidInput = 2;
}
