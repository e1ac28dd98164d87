using System.CommandLine;
using RenderFarm.Diffusion.Models;

namespace RenderFarm.Cli.Commands;

internal static class ConsoleOutput
{
    public static TextWriter Out(this ParseResult result) => result.InvocationConfiguration.Output;
    public static TextWriter Error(this ParseResult result) => result.InvocationConfiguration.Error;

    /// <summary>Errors that mean the user's input is wrong (a model folder, an image file): exit code 2, not a failed render.</summary>
    public static bool IsInvalidInput(Exception exception) =>
        exception is ModelFormatException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or FormatException;

    public static int Fail(this ParseResult result, int exitCode, string message)
    {
        result.Error().WriteLine($"error: {message}");
        return exitCode;
    }
}
