using System.Globalization;
using System.Security.Claims;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.Auth;

/// <summary>The coordinator's API keys, roles and tenants: services and middleware.</summary>
public static class AuthExtensions
{
    public static IServiceCollection AddFarmAuth(this IServiceCollection services)
    {
        services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.SectionName);
        services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<RateLimitOptions>, RateLimitOptionsValidator>();
        services.AddRateLimiter(limits =>
        {
            limits.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limits.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(PartitionOf);
            limits.OnRejected = RejectAsync;
        });
        services.AddScoped<ApiKeys>();
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(FarmPolicies.Read, p => p.RequireAuthenticatedUser())
            .AddPolicy(FarmPolicies.Submit, p => p.RequireRole(nameof(FarmRole.Submitter), nameof(FarmRole.Operator), nameof(FarmRole.Admin)))
            .AddPolicy(FarmPolicies.Fleet, p => p.RequireRole(nameof(FarmRole.Viewer), nameof(FarmRole.Operator), nameof(FarmRole.Admin)))
            .AddPolicy(FarmPolicies.Operate, p => p.RequireRole(nameof(FarmRole.Operator), nameof(FarmRole.Admin)))
            .AddPolicy(FarmPolicies.Admin, p => p.RequireRole(nameof(FarmRole.Admin)))

            // Every endpoint that names no policy needs a key: a route added later is closed until someone opens it.
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        return services;
    }

    /// <summary>Authentication and authorization, and the same key check in front of the dashboard's files.</summary>
    public static IApplicationBuilder UseFarmAuth(this IApplicationBuilder app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        // The dashboard's files are served by middleware, not endpoints, so the fallback policy does not reach them.
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.StartsWithSegments(Dashboard.DashboardExtensions.Path) && context.User.Identity?.IsAuthenticated != true)
            {
                await context.ChallengeAsync();
                return;
            }

            await next(context);
        });
        return app;
    }

    // One bucket per key id. Requests without a key (an open farm's callers, the probes, refused requests) are not
    // limited here: there is no key to hold to account, and on a farm that requires keys they are answered at once.
    private static RateLimitPartition<string> PartitionOf(HttpContext context)
    {
        var keyId = context.User.Identity?.IsAuthenticated == true ? context.User.FindFirstValue(ClaimTypes.NameIdentifier) : null;
        var options = context.RequestServices.GetRequiredService<IOptions<RateLimitOptions>>().Value;
        if (keyId is null || keyId == ApiKeyAuthenticationHandler.OpenFarmCallerId || options.Burst == 0)
        {
            return RateLimitPartition.GetNoLimiter("");
        }

        return RateLimitPartition.GetTokenBucketLimiter(keyId, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = options.Burst,
            TokensPerPeriod = options.PerPeriod,
            ReplenishmentPeriod = options.Period,
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    private static async ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var http = rejected.HttpContext;
        var wait = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(1);
        var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails =
            {
                Status = StatusCodes.Status429TooManyRequests,
                Title = "Too many requests for this API key.",
                Detail = $"The key's rate limit ({RateLimitOptions.SectionName}) is used up; retry after {seconds} s.",
            },
        });
    }
}
