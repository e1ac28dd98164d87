using System.Net;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Storage;
using RenderFarm.Storage.Models;

namespace RenderFarm.Coordinator.Tests;

/// <summary>A model pushed to the farm's store may be named by a job, as a configured one can: workers fetch it on demand.</summary>
public abstract class ModelStoreSubmissionTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    [Fact]
    public async Task A_job_may_name_a_model_that_is_only_in_the_store_and_not_one_that_is_nowhere()
    {
        var name = "pushed-" + Guid.NewGuid().ToString("N")[..8];
        var folder = Directory.CreateTempSubdirectory("rf-pushed-model-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(folder, "model_index.json"), "{}");
            var store = fixture.Factory.Services.GetRequiredService<IArtifactStore>();

            var job = JobsClient.ValidJob();
            job["model"] = name;
            using (var before = await fixture.Client.PostRawAsync(job.ToJsonString()))
            {
                before.StatusCode.ShouldBe(HttpStatusCode.BadRequest, "a model neither configured nor pushed is unknown");
            }

            await new ModelRepository(store).PushAsync(name, folder, replace: false, progress: null, CancellationToken.None);

            using var after = await fixture.Client.PostRawAsync(job.ToJsonString());
            after.StatusCode.ShouldBe(HttpStatusCode.Accepted, await after.Content.ReadAsStringAsync());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}

/// <summary>On the real PostgreSQL.</summary>
public sealed class PostgresModelStoreSubmissionTests(PostgresCoordinatorFixture fixture)
    : ModelStoreSubmissionTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>On embedded SQLite.</summary>
public sealed class SqliteModelStoreSubmissionTests(SqliteCoordinatorFixture fixture)
    : ModelStoreSubmissionTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
