using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.FileProviders;
using Microsoft.Net.Http.Headers;

namespace RenderFarm.Dashboard;

/// <summary>
/// Serves the operators' dashboard: static pages that read only the coordinator's HTTP API (the monitoring
/// endpoints under <c>/v1</c> and the job event streams), so any host that maps that API can map the dashboard.
/// </summary>
public static class DashboardExtensions
{
    /// <summary>Where the dashboard is served.</summary>
    public const string Path = "/dashboard";

    private const string ResourcePrefix = "RenderFarm.Dashboard.wwwroot";

    /// <summary>Serves the dashboard at <see cref="Path"/> (<c>/dashboard/</c> is its page; <c>/dashboard</c> redirects there).</summary>
    public static WebApplication MapDashboard(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var files = new EmbeddedFileProvider(typeof(DashboardExtensions).Assembly, ResourcePrefix);
        // Default files also redirect /dashboard to /dashboard/, so the page's relative links resolve.
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files, RequestPath = Path, RedirectToAppendTrailingSlash = true });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            RequestPath = Path,
            ContentTypeProvider = new FileExtensionContentTypeProvider(),

            // The files are small and change with each release; revalidating keeps a browser from mixing versions.
            OnPrepareResponse = context => context.Context.Response.Headers[HeaderNames.CacheControl] = "no-cache",
        });
        return app;
    }
}
