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
        root.Add(WatermarkCommand.Create());
        root.Add(ModelsCommand.Create());
        root.Add(PlanCommand.Create());
        root.Add(ServeCommand.Create());
        root.Add(SubmitCommand.Create());
        root.Add(StatusCommand.Create());
        root.Add(CancelCommand.Create());
        root.Add(DeleteCommand.Create());
        root.Add(RetryCommand.Create());
        root.Add(FetchCommand.Create());
        root.Add(ExportCommand.Create());
        root.Add(JobsCommand.Create());
        root.Add(WorkersCommand.Create());
        root.Add(TopCommand.Create());
        root.Add(DeadLettersCommand.Create());
        root.Add(DbCommand.Create());
        root.Add(KeysCommand.Create());
        AddApiKeyOption(root);
        return root;
    }

    // Every command that talks to a farm (it has --farm) takes the key too, so no such command can be left without one.
    private static void AddApiKeyOption(Command command)
    {
        if (command.Options.Any(o => o.Name == "--farm"))
        {
            command.Add(FarmConnection.CreateApiKeyOption());
        }

        foreach (var sub in command.Subcommands)
        {
            AddApiKeyOption(sub);
        }
    }

    /// <summary>Runs the CLI: <c>Main</c> with the console, tests with captured writers.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var parsed = Create().Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // System.CommandLine answers a malformed command line with exit code 1 and its help text; a malformed
            // command line is bad input like any other, so it gets exit code 2 and the parser's own messages.
            foreach (var parseError in parsed.Errors)
            {
                await error.WriteLineAsync($"error: {parseError.Message}");
            }

            await error.WriteLineAsync($"See 'renderfarm {parsed.CommandResult.Command.Name} --help'.");
            return ExitCodes.InvalidInput;
        }

        var configuration = new InvocationConfiguration { Output = output, Error = error };
        return await parsed.InvokeAsync(configuration, cancellationToken);
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
