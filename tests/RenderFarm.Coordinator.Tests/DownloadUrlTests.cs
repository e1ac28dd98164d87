using System.Net;
using System.Web;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Storage;
using RenderFarm.Testing;

namespace RenderFarm.Coordinator.Tests;

/// <summary>A coordinator on the real S3 of <c>deploy/local/services</c> whose image links live 90 seconds.</summary>
public sealed class ShortLivedUrlsFixture : SqliteCoordinatorFixture
{
    protected override IReadOnlyDictionary<string, string?> Settings
    {
        get
        {
            var settings = new Dictionary<string, string?>
            {
                ["Storage:Provider"] = "S3",
                ["Coordinator:DownloadUrlLifetime"] = "00:01:30",
            };
            foreach (var name in new[] { "RENDERFARM_S3_ENDPOINT", "RENDERFARM_S3_ACCESS_KEY", "RENDERFARM_S3_SECRET_KEY", "RENDERFARM_S3_BUCKET", "RENDERFARM_S3_SECURE" })
            {
                settings[name] = name == "RENDERFARM_S3_ENDPOINT" ? LocalServiceSettings.Require(name) : LocalServiceSettings.Get(name);
            }

            return settings;
        }
    }
}

/// <summary>
/// An image's link is a presigned store URL that expires after <c>Coordinator:DownloadUrlLifetime</c>: a leaked link
/// stops working, and the operator chooses how soon.
/// </summary>
public sealed class DownloadUrlTests(ShortLivedUrlsFixture fixture) : IClassFixture<ShortLivedUrlsFixture>
{
    [Fact]
    public async Task An_image_redirects_to_a_store_url_signed_for_the_configured_lifetime_that_serves_the_png()
    {
        var id = (await fixture.Client.SubmitAsync(JobsClient.ValidJob("a link that expires"))).Id();
        var item = (await fixture.Probe.NextUnitAsync(id)).Items.Single();
        var store = fixture.Factory.Services.GetRequiredService<IArtifactStore>();
        await store.PutAsync(item.OutputKey, new MemoryStream(TestPng.Bytes), "image/png", CancellationToken.None);
        await fixture.Probe.Bus.Publish(new ItemRendered(item.ItemId, id, item.Attempt, item.OutputKey, "worker-a", TimeSpan.Zero));
        await fixture.Client.WaitForStateAsync(id, "Succeeded");
        using var noRedirects = fixture.Factory.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        using var response = await noRedirects.GetAsync($"/v1/images/{id}/0");

        response.StatusCode.ShouldBe(HttpStatusCode.Redirect);
        var url = response.Headers.Location!;
        HttpUtility.ParseQueryString(url.Query)["X-Amz-Expires"].ShouldBe("90");
        using var direct = new HttpClient();
        (await direct.GetByteArrayAsync(url)).ShouldBe(TestPng.Bytes);
    }
}
