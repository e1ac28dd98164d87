using System.CommandLine;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Polly;
using RenderFarm.Cli.Farm;
using RenderFarm.Client;

namespace RenderFarm.Cli.Commands;

/// <summary>The <c>--farm</c> option of the client verbs, the client it builds, and how farm errors become exit codes.</summary>
internal static class FarmConnection
{
    /// <summary>Environment variable holding the farm's URL when <c>--farm</c> is not given.</summary>
    public const string EnvironmentVariable = "RENDERFARM_FARM";

    /// <summary>Environment variable holding the API key when <c>--api-key</c> is not given.</summary>
    public const string ApiKeyEnvironmentVariable = "RENDERFARM_API_KEY";

    public const string ApiKeyOptionName = "--api-key";

    /// <summary>The <c>--api-key</c> option; <see cref="CliApp"/> gives it to every command that has <c>--farm</c>.</summary>
    public static Option<string?> CreateApiKeyOption() => new(ApiKeyOptionName)
    {
        Description = $"The API key sent as 'Authorization: Bearer KEY' (default: ${ApiKeyEnvironmentVariable}); a farm that requires keys answers 401 without one.",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(ApiKeyEnvironmentVariable) is { Length: > 0 } key ? key : null,
    };

    /// <summary>The key given to this command (option or environment), or null.</summary>
    public static string? ApiKeyOf(ParseResult result) =>
        result?.CommandResult.Command.Options.OfType<Option<string?>>().FirstOrDefault(o => o.Name == ApiKeyOptionName) is { } option
            ? result.GetValue(option)
            : null;

    public static Option<string> CreateOption() => new("--farm")
    {
        Description = $"The farm's URL (default: ${EnvironmentVariable}, else {EmbeddedFarm.DefaultUrls}, where `renderfarm serve` listens).",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } url ? url : EmbeddedFarm.DefaultUrls,
    };

    /// <summary>
    /// Runs <paramref name="action"/> with a client of the farm named by <paramref name="farm"/>. API problems print
    /// their title and each field error on its own line and exit 2 (4xx: the request is wrong) or 1 (5xx); a farm
    /// that cannot be reached exits 1 with a hint.
    /// </summary>
    public static async Task<int> RunAsync(ParseResult result, Option<string> farm, Func<RenderFarmClient, Task<int>> action, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(action);
        var url = result.GetRequiredValue(farm);
        if (!Uri.TryCreate(url, UriKind.Absolute, out var address) || address.Scheme is not ("http" or "https"))
        {
            return result.Fail(ExitCodes.InvalidInput, $"--farm must be an http:// or https:// URL, got '{url}'.");
        }

        var services = new ServiceCollection();

        // One quick retry: a person at a terminal wants to hear that the farm is down in a second, not after the
        // standard pipeline's back-off.
        services.AddRenderFarmClient(address, resilience =>
        {
            resilience.Retry.MaxRetryAttempts = 1;
            resilience.Retry.Delay = TimeSpan.FromMilliseconds(200);
        }, ApiKeyOf(result));
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<RenderFarmClient>();
        try
        {
            return await action(client);
        }
        catch (RenderFarmApiException ex)
        {
            return Problem(result, ex);
        }
        catch (HttpRequestException ex) when (ex.StatusCode is null)
        {
            return Unreachable(result, address, ex.InnerException is SocketException socket ? socket.Message : ex.Message);
        }
        catch (ExecutionRejectedException ex)
        {
            // Polly's time-outs and open circuit: the farm accepted the connection but does not answer.
            return Unreachable(result, address, ex.Message);
        }
    }

    /// <summary>Prints an API problem: title, detail, then each field error on its own line.</summary>
    public static int Problem(ParseResult result, RenderFarmApiException problem)
    {
        ArgumentNullException.ThrowIfNull(problem);
        var error = result.Error();
        error.WriteLine($"error: {problem.Title} ({problem.Status})");
        if (!string.IsNullOrWhiteSpace(problem.Detail))
        {
            error.WriteLine($"  {problem.Detail}");
        }

        foreach (var (field, messages) in problem.Errors.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            foreach (var message in messages)
            {
                error.WriteLine($"  {field}: {message}");
            }
        }

        return problem.Status is >= 400 and < 500 ? ExitCodes.InvalidInput : ExitCodes.Failure;
    }

    /// <summary>Parses a job id argument; prints the error and returns null when it is not one.</summary>
    public static Guid? ParseJobId(ParseResult result, string text)
    {
        if (Guid.TryParse(text, out var id))
        {
            return id;
        }

        result.Fail(ExitCodes.InvalidInput, $"'{text}' is not a job id (a UUID as `renderfarm submit` prints it).");
        return null;
    }

    private static int Unreachable(ParseResult result, Uri address, string reason) =>
        result.Fail(ExitCodes.Failure, $"cannot reach the farm at {address} ({reason}); is `renderfarm serve` running? (set --farm or ${EnvironmentVariable} for another farm)");
}
