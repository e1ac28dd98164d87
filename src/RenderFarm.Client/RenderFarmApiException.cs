using System.Net;

namespace RenderFarm.Client;

/// <summary>
/// The farm answered with an error: its <c>application/problem+json</c> body (RFC 9457) when it sent one, otherwise
/// the status line. <see cref="Errors"/> holds the per-field messages of a 400 validation problem.
/// </summary>
public sealed class RenderFarmApiException : Exception
{
    public RenderFarmApiException()
        : this(0, "The farm answered with an error.", null, new Dictionary<string, IReadOnlyList<string>>())
    {
    }

    public RenderFarmApiException(string message)
        : this(0, message, null, new Dictionary<string, IReadOnlyList<string>>())
    {
    }

    public RenderFarmApiException(string message, Exception innerException)
        : base(message, innerException)
    {
        Title = message;
        Errors = new Dictionary<string, IReadOnlyList<string>>();
    }

    /// <summary>Creates the exception from a problem's parts.</summary>
    public RenderFarmApiException(int status, string title, string? detail, IReadOnlyDictionary<string, IReadOnlyList<string>> errors)
        : base(Describe(status, title, detail, errors))
    {
        ArgumentNullException.ThrowIfNull(errors);
        Status = status;
        Title = title;
        Detail = detail;
        Errors = errors;
    }

    /// <summary>The HTTP status code.</summary>
    public int Status { get; }

    /// <summary>HTTP status as the enum.</summary>
    public HttpStatusCode StatusCode => (HttpStatusCode)Status;

    /// <summary>The problem's title, e.g. "The job request is invalid.".</summary>
    public string Title { get; }

    /// <summary>The problem's detail, when it has one.</summary>
    public string? Detail { get; }

    /// <summary>Messages by field name (e.g. <c>width</c>, <c>sweep.seeds[2]</c>); empty unless the request was invalid.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Errors { get; }

    private static string Describe(int status, string title, string? detail, IReadOnlyDictionary<string, IReadOnlyList<string>> errors)
    {
        var text = $"{status}: {title}";
        if (!string.IsNullOrWhiteSpace(detail))
        {
            text += " " + detail;
        }

        foreach (var (field, messages) in errors ?? new Dictionary<string, IReadOnlyList<string>>())
        {
            foreach (var message in messages)
            {
                text += $"{Environment.NewLine}  {field}: {message}";
            }
        }

        return text;
    }
}
