using System.Security.Claims;
using Microsoft.EntityFrameworkCore;
using RenderFarm.Coordinator.Apis;
using RenderFarm.Coordinator.Persistence;

namespace RenderFarm.Coordinator.Auth;

/// <summary>Which jobs a caller may see: a submitter its tenant's, every other role all.</summary>
public static class TenantScope
{
    /// <summary>The caller's tenant.</summary>
    public static string TenantOf(this ClaimsPrincipal user) =>
        user?.FindFirstValue(FarmClaims.Tenant) ?? FarmClaims.DefaultTenant;

    /// <summary>The tenant the caller's reads are limited to; null when it sees every tenant.</summary>
    public static string? VisibleTenant(this ClaimsPrincipal user) =>
        user is not null && user.IsInRole(nameof(FarmRole.Submitter)) ? user.TenantOf() : null;
}

/// <summary>
/// On every route naming a job (<c>{id}</c> or <c>{jobId}</c>): a submitter asking for another tenant's job gets the
/// same 404 as for a job that does not exist, so ids of other tenants' jobs cannot even be confirmed.
/// </summary>
internal sealed class JobTenantFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (http.User.VisibleTenant() is { } tenant && JobIdOf(http) is { } jobId)
        {
            var db = http.RequestServices.GetRequiredService<CoordinatorDbContext>();
            var owner = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId).Select(j => j.Tenant).FirstOrDefaultAsync(http.RequestAborted);
            if (owner is not null && owner != tenant)
            {
                return JobsApi.JobNotFound(jobId);
            }
        }

        return await next(context);
    }

    private static Guid? JobIdOf(HttpContext http) =>
        (http.Request.RouteValues.TryGetValue("id", out var id) || http.Request.RouteValues.TryGetValue("jobId", out id))
        && Guid.TryParse(id?.ToString(), out var jobId) ? jobId : null;
}
