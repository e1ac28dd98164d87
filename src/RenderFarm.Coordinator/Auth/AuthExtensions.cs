using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;

namespace RenderFarm.Coordinator.Auth;

/// <summary>The coordinator's API keys, roles and tenants: services and middleware.</summary>
public static class AuthExtensions
{
    public static IServiceCollection AddFarmAuth(this IServiceCollection services)
    {
        services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.SectionName);
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
}
