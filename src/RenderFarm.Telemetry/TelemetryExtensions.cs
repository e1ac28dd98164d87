using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace RenderFarm.Telemetry;

/// <summary>OpenTelemetry and health wiring shared by every RenderFarm host (coordinator, worker, embedded farm).</summary>
public static class TelemetryExtensions
{
    /// <summary>Environment variable / configuration key that turns the OTLP exporter on (standard OpenTelemetry name).</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>Tag of the health checks that say the process is alive (not whether its dependencies are).</summary>
    public const string LiveTag = "live";

    /// <summary>Path of the readiness endpoint: every health check.</summary>
    public const string HealthPath = "/health";

    /// <summary>Path of the liveness endpoint: checks tagged <see cref="LiveTag"/> only.</summary>
    public const string AlivePath = "/alive";

    /// <summary>Path of the Prometheus scraping endpoint.</summary>
    public const string MetricsPath = "/metrics";

    // .NET's HttpClient has emitted its own spans and metrics under this name since .NET 9, so no
    // instrumentation package is needed (and OpenTelemetry.Instrumentation.Http is not served here).
    private const string HttpClientSource = "System.Net.Http";

    /// <summary>
    /// Adds OpenTelemetry logging, tracing and metrics under <paramref name="serviceName"/>: ASP.NET Core,
    /// HttpClient, MassTransit, Npgsql, runtime and the farm's own sources (<see cref="RenderFarmDiagnostics"/>);
    /// a Prometheus exporter (served by <see cref="MapRenderFarmHealth"/>), and OTLP only when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set.
    /// </summary>
    /// <param name="builder">The host builder; a Generic Host (worker) works as well as a web application.</param>
    /// <param name="serviceName">The <c>service.name</c> resource attribute, e.g. <c>renderfarm-coordinator</c>.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IHostApplicationBuilder AddRenderFarmTelemetry(this IHostApplicationBuilder builder, string serviceName)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceName);

        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName))
            .WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation(options => options.Filter = context => !IsProbe(context.Request.Path))
                .AddSource(HttpClientSource)
                .AddSource(RenderFarmDiagnostics.MassTransit)
                .AddNpgsql()
                .AddSource([.. RenderFarmDiagnostics.All]))
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(HttpClientSource)
                .AddMeter(RenderFarmDiagnostics.MassTransit)
                .AddNpgsqlInstrumentation()
                .AddMeter([.. RenderFarmDiagnostics.All])
                .AddPrometheusExporter());

        if (!string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointVariable]))
            otel.UseOtlpExporter();

        return builder;
    }

    /// <summary>
    /// Adds health checks with a <c>self</c> check tagged <see cref="LiveTag"/>; hosts chain their dependency
    /// checks (database, storage) on the result. MassTransit registers its own bus check when health checks exist.
    /// </summary>
    /// <param name="builder">The host builder.</param>
    /// <returns>The health checks builder, for the host's own checks.</returns>
    public static IHealthChecksBuilder AddRenderFarmHealthChecks(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);
    }

    /// <summary>
    /// Maps <c>/health</c> (all checks), <c>/alive</c> (live checks only) and <c>/metrics</c> (Prometheus).
    /// </summary>
    /// <remarks>
    /// Mapped in every environment, unlike eShop's development-only default: the orchestrator probes them in
    /// production. The responses carry only the overall status, never check details.
    /// </remarks>
    /// <param name="app">The web application.</param>
    /// <returns>The application, for chaining.</returns>
    public static WebApplication MapRenderFarmHealth(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // Open even where a host asks for API keys: orchestrators' probes and Prometheus scrapers carry no key, and
        // these answer only health and aggregate metrics (no prompts, images or job ids).
        app.MapHealthChecks(HealthPath).AllowAnonymous();
        app.MapHealthChecks(AlivePath, new HealthCheckOptions { Predicate = check => check.Tags.Contains(LiveTag) }).AllowAnonymous();
        app.MapPrometheusScrapingEndpoint(MetricsPath).AllowAnonymous();
        return app;
    }

    // Probes and scrapes arrive every few seconds; tracing them would drown the traces that matter.
    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments(HealthPath) || path.StartsWithSegments(AlivePath) || path.StartsWithSegments(MetricsPath);
}
