using System.CommandLine;

namespace RenderFarm.Cli.Commands;

internal static class ConsoleOutput
{
    public static TextWriter Out(this ParseResult result) => result.InvocationConfiguration.Output;
    public static TextWriter Error(this ParseResult result) => result.InvocationConfiguration.Error;

    public static int Fail(this ParseResult result, int exitCode, string message)
    {
        result.Error().WriteLine($"error: {message}");
        return exitCode;
    }
}
