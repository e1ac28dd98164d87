using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// Per-unit reports (<see cref="ItemsStarted"/>, <see cref="ItemsRendered"/>) through the coordinator's own consumers
/// on the bus: each entry is recorded as its single message would be, once, with duplicates, stale attempts and a
/// single-form report of the same item mixed in, and the job's event stream still announces every start and image.
/// </summary>
public abstract class UnitReportTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private const string Worker = "worker-unit-reports";

    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    [Fact]
    public async Task A_units_starts_and_images_sent_together_are_each_recorded_once_and_announced()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 3;
        var id = (await Client.SubmitAsync(job)).Id();
        var items = (await Probe.NextUnitAsync(id)).Items.OrderBy(i => i.Index).ToList();
        items.Count.ShouldBe(3);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{id}/events");
        using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        (await NextEventAsync(reader)).Type.ShouldBe("snapshot");
        var events = new List<(string Type, JsonElement Data)>();

        // One message for the unit's starts, with a duplicate entry and an attempt the item never had.
        await Probe.Bus.Publish(new ItemsStarted([Started(id, items[0]), Started(id, items[1]), Started(id, items[2]), Started(id, items[0]), Started(id, items[1]) with { Attempt = 2 }]));
        await ReadUntilAsync(reader, events, () => events.Count(e => e.Type == "item-started") == 3);
        IndexesOf(events, "item-started").ShouldBe([0L, 1L, 2L], ignoreOrder: true);
        (await CountsAsync(id)).ShouldBe((Queued: 0L, Running: 3L, Succeeded: 0L));

        await Probe.Bus.Publish(new ItemsRendered([Rendered(id, items[0]), Rendered(id, items[1])]));
        await ReadUntilAsync(reader, events, () => events.Count(e => e.Type == "item-done") == 2);
        (await CountsAsync(id)).ShouldBe((Queued: 0L, Running: 1L, Succeeded: 2L));

        // The same images again, singly and gathered, and an image of an attempt not yet made: none counts twice.
        await Probe.Bus.Publish(Rendered(id, items[0]));
        await Probe.Bus.Publish(new ItemsRendered([Rendered(id, items[2]) with { Attempt = 2 }, Rendered(id, items[1])]));
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        (await CountsAsync(id)).ShouldBe((Queued: 0L, Running: 1L, Succeeded: 2L));

        await Probe.Bus.Publish(new ItemsRendered([Rendered(id, items[2]), Rendered(id, items[0])]));
        await ReadUntilAsync(reader, events, () => events[^1].Type == "job-done");
        IndexesOf(events, "item-done").ShouldBe([0L, 1L, 2L], ignoreOrder: true);
        (await CountsAsync(id)).ShouldBe((Queued: 0L, Running: 0L, Succeeded: 3L));

        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var rows = await db.Items.AsNoTracking().Where(i => i.JobId == id).ToListAsync();
        foreach (var item in items)
        {
            var row = rows.Single(r => r.Id == item.ItemId);
            row.State.ShouldBe(ItemState.Succeeded);
            row.ArtifactKey.ShouldBe(item.OutputKey);
            row.WorkerId.ShouldBe(Worker);
            row.Attempt.ShouldBe(1);
        }

        var done = await db.Jobs.AsNoTracking().SingleAsync(j => j.Id == id);
        done.SucceededItems.ShouldBe(3);
        done.State.ShouldBe(JobState.Succeeded);
    }

    private static ItemStarted Started(Guid jobId, RenderItem item) =>
        new(item.ItemId, jobId, item.Attempt, Worker, DateTimeOffset.UtcNow);

    private static ItemRendered Rendered(Guid jobId, RenderItem item) =>
        new(item.ItemId, jobId, item.Attempt, item.OutputKey, Worker, TimeSpan.FromMilliseconds(5));

    private static List<long> IndexesOf(List<(string Type, JsonElement Data)> events, string type) =>
        [.. events.Where(e => e.Type == type).Select(e => e.Data.GetProperty("index").GetInt64())];

    private static async Task ReadUntilAsync(StreamReader reader, List<(string Type, JsonElement Data)> events, Func<bool> done)
    {
        while (!done())
        {
            events.Add(await NextEventAsync(reader));
        }
    }

    private static async Task<(string Type, JsonElement Data)> NextEventAsync(StreamReader reader)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        string? type = null;
        while (true)
        {
            var line = await reader.ReadLineAsync(cts.Token) ?? throw new EndOfStreamException("The event stream ended.");
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line["event: ".Length..];
            }
            else if (type is not null && line.StartsWith("data: ", StringComparison.Ordinal))
            {
                return (type, JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone());
            }
        }
    }

    private async Task<(long Queued, long Running, long Succeeded)> CountsAsync(Guid jobId)
    {
        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        var job = await db.Jobs.AsNoTracking().SingleAsync(j => j.Id == jobId);
        var items = await db.Items.AsNoTracking().Where(i => i.JobId == jobId).Select(i => i.State).ToListAsync();
        // The counters must agree with the items they count.
        (job.QueuedItems, job.RunningItems, job.SucceededItems).ShouldBe(
            (items.Count(s => s == ItemState.Queued), items.Count(s => s == ItemState.Running), items.Count(s => s == ItemState.Succeeded)));
        return (job.QueuedItems, job.RunningItems, job.SucceededItems);
    }
}

/// <summary>Per-unit reports on the real PostgreSQL.</summary>
public sealed class PostgresUnitReportTests(PostgresCoordinatorFixture fixture)
    : UnitReportTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>Per-unit reports on embedded SQLite.</summary>
public sealed class SqliteUnitReportTests(SqliteCoordinatorFixture fixture)
    : UnitReportTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
