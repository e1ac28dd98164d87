using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;

namespace RenderFarm.Client;

/// <summary>Registers <see cref="RenderFarmClient"/> as a typed HTTP client with the standard resilience pipeline.</summary>
public static class RenderFarmClientServiceCollectionExtensions
{
    /// <summary>
    /// One attempt may take this long: a sweep of a million items is written in one request and takes seconds,
    /// far past the standard pipeline's 10 s.
    /// </summary>
    public static readonly TimeSpan AttemptTimeout = TimeSpan.FromMinutes(2);

    /// <summary>All attempts of one request together.</summary>
    public static readonly TimeSpan TotalRequestTimeout = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Adds <see cref="RenderFarmClient"/> for the farm at <paramref name="baseAddress"/>. Retries (transient failures,
    /// 5xx, 429) apply to safe methods only, because a retried <c>POST /v1/jobs</c> without an Idempotency-Key would
    /// submit a second job. <paramref name="configureResilience"/> adjusts the pipeline (a CLI wants a quick answer
    /// when the farm is down, not the default back-off).
    /// </summary>
    public static IHttpClientBuilder AddRenderFarmClient(
        this IServiceCollection services,
        Uri baseAddress,
        Action<HttpStandardResilienceOptions>? configureResilience = null,
        string? apiKey = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(baseAddress);
        if (!baseAddress.IsAbsoluteUri)
        {
            throw new ArgumentException($"The farm's address must be absolute, got '{baseAddress}'.", nameof(baseAddress));
        }

        // Relative request paths ("v1/jobs") resolve under the base only when it ends with a slash.
        var normalized = baseAddress.AbsoluteUri.EndsWith('/') ? baseAddress : new Uri(baseAddress.AbsoluteUri + "/");
        var builder = services.AddHttpClient<RenderFarmClient>(http =>
        {
            http.BaseAddress = normalized;

            // Event streams stay open for the length of a job; per-attempt timeouts below bound everything else.
            http.Timeout = Timeout.InfiniteTimeSpan;
            if (!string.IsNullOrEmpty(apiKey))
            {
                http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
            }
        });
        builder.AddStandardResilienceHandler(options =>
        {
            options.Retry.DisableForUnsafeHttpMethods();
            options.AttemptTimeout.Timeout = AttemptTimeout;
            options.TotalRequestTimeout.Timeout = TotalRequestTimeout;
            options.CircuitBreaker.SamplingDuration = 2 * AttemptTimeout;
            configureResilience?.Invoke(options);
        });
        return builder;
    }
}
