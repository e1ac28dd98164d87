using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Tests.Infrastructure;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// A job's own <c>safety</c> and <c>watermark</c>: validated against the engine's rules at submission, sent with every
/// work unit, and the checker's outcome recorded on the image (job view and manifest), on PostgreSQL and on SQLite.
/// </summary>
public abstract class JobSafetyAndWatermarkTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    [Fact]
    public async Task A_jobs_safety_mode_and_watermark_travel_with_every_work_unit()
    {
        var job = JobsClient.ValidJob();
        job["width"] = 256;
        job["height"] = 256;
        job["count"] = 3;
        job["safety"] = "Block";
        job["watermark"] = "StableDiffusionV1";

        var id = (await Client.SubmitAsync(job)).Id();
        var units = await Probe.UnitsAsync(id, 3);

        units.ShouldNotBeEmpty();
        units.ShouldAllBe(u => u.Safety == "block" && u.Watermark == "StableDiffusionV1");
    }

    [Fact]
    public async Task A_job_without_them_leaves_both_to_the_engine_and_the_farm()
    {
        var id = (await Client.SubmitAsync(JobsClient.ValidJob())).Id();
        var units = await Probe.UnitsAsync(id, 1);

        units.ShouldAllBe(u => u.Safety == null && u.Watermark == null);
    }

    [Theory]
    [InlineData("""{"safety":"strict"}""", "safety", "not a mode")]
    [InlineData("""{"watermark":"StableDiffusionV1"}""", "watermark", "at least 65536 pixels")]
    [InlineData("""{"watermark":"","width":256,"height":256}""", "watermark", "1 to 32 bytes")]
    [InlineData("""{"watermark":"a watermark text far longer than thirty-two bytes","width":256,"height":256}""", "watermark", "1 to 32 bytes")]
    [InlineData("""{"watermark":"UUUU","width":256,"height":256}""", "watermark", "period shorter than a byte")]
    [InlineData("""{"watermark":"mark","sweep":{"sizes":[{"width":256,"height":256},{"width":128,"height":128}]},"width":null,"height":null}""", "watermark", "128x128")]
    [InlineData("""{"mode":"hires","width":1024,"height":1024,"safety":"block"}""", "safety", "hires")]
    [InlineData("""{"mode":"hires","width":1024,"height":1024,"watermark":"mark"}""", "watermark", "hires")]
    public async Task What_the_engine_would_refuse_is_a_400_naming_the_field(string patch, string field, string detail)
    {
        using var response = await Client.PostRawAsync(JobsClient.Patched(patch));

        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, text);
        var errors = JsonDocument.Parse(text).RootElement.GetProperty("errors");
        errors.EnumerateObject().Select(e => e.Name).ShouldBe([field], text);
        errors.GetProperty(field)[0].GetString()!.ShouldContain(detail, Case.Insensitive);
    }

    [Fact]
    public async Task The_checkers_outcome_is_recorded_on_the_image_and_a_blocked_image_is_a_failure_with_its_reason()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 3;
        job["safety"] = "blur";
        var id = (await Client.SubmitAsync(job)).Id();
        var items = (await Probe.UnitsAsync(id, 3)).SelectMany(u => u.Items).OrderBy(i => i.Index).ToList();
        const string blocked = "Blocked by the model's safety checker (safety: block); the image was not stored.";

        await Probe.Bus.Publish(new ItemRendered(items[0].ItemId, id, 1, items[0].OutputKey, "worker-a", TimeSpan.Zero, new string('a', 64), Safety: "passed"));
        await Probe.Bus.Publish(new ItemRendered(items[1].ItemId, id, 1, items[1].OutputKey, "worker-a", TimeSpan.Zero, new string('b', 64), Safety: "blurred"));
        await Probe.Bus.Publish(new ItemFailed(items[2].ItemId, id, 1, "worker-a", blocked, Retryable: false));
        var view = await Client.WaitForStateAsync(id, "CompletedWithErrors");

        view.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("safety").GetString()).ShouldBe(["passed", "blurred"]);
        using var response = await Client.GetAsync($"/v1/jobs/{id}/manifest");
        var lines = (await response.Content.ReadAsStringAsync()).TrimEnd('\n').Split('\n').Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        lines.Select(l => l["safety"]?.GetValue<string>()).ShouldBe(["passed", "blurred", null]);
        lines[2]["status"]!.GetValue<string>().ShouldBe("failed");
        lines[2]["error"]!.GetValue<string>().ShouldBe(blocked);
    }
}

/// <summary>On the real PostgreSQL.</summary>
public sealed class PostgresJobSafetyAndWatermarkTests(PostgresCoordinatorFixture fixture)
    : JobSafetyAndWatermarkTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>On SQLite, as the embedded farm runs it.</summary>
public sealed class SqliteJobSafetyAndWatermarkTests(SqliteCoordinatorFixture fixture)
    : JobSafetyAndWatermarkTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
