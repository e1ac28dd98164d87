using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// The ledger's batch path (what the start and image consumers hand it): one transaction for reports of many items
/// across jobs, with the duplicates, stale attempts and out-of-order reports a real broker delivers mixed in. Called
/// directly so the batches are exactly these, not whatever the consumer's time limit happens to collect.
/// </summary>
public abstract class LedgerBatchTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    [Fact]
    public async Task A_batch_across_jobs_moves_each_item_once_and_ignores_duplicates_and_stale_attempts()
    {
        var a = await SubmitAsync(count: 3);
        var b = await SubmitAsync(count: 2);
        var itemsA = (await Probe.NextUnitAsync(a)).Items.OrderBy(i => i.Index).ToList();
        var itemsB = (await Probe.NextUnitAsync(b)).Items.OrderBy(i => i.Index).ToList();

        await using (var scope = fixture.Factory.Services.CreateAsyncScope())
        {
            var ledger = scope.ServiceProvider.GetRequiredService<ItemLedger>();
            await ledger.StartedAsync(
            [
                Started(a, itemsA[0]), Started(a, itemsA[1]), Started(a, itemsA[0]),
                Started(b, itemsB[0]),
                Started(b, itemsB[1]) with { Attempt = 2 },
            ], CancellationToken.None);
        }

        (await CountsAsync(a)).ShouldBe((Queued: 1L, Running: 2L, Succeeded: 0L));
        (await CountsAsync(b)).ShouldBe((Queued: 1L, Running: 1L, Succeeded: 0L), "a start of an attempt the item never had changes nothing");
        (await StateAsync(itemsB[1].ItemId)).ShouldBe(ItemState.Queued);

        await using (var scope = fixture.Factory.Services.CreateAsyncScope())
        {
            var ledger = scope.ServiceProvider.GetRequiredService<ItemLedger>();
            await ledger.RenderedAsync(
            [
                Rendered(a, itemsA[0]), Rendered(a, itemsA[1]),
                Rendered(a, itemsA[2]), // its start is still on the way: queued → succeeded
                Rendered(a, itemsA[0]),
                Rendered(b, itemsB[0]),
                Rendered(b, itemsB[1]) with { Attempt = 2 },
            ], CancellationToken.None);
        }

        (await CountsAsync(a)).ShouldBe((Queued: 0L, Running: 0L, Succeeded: 3L));
        (await Client.WaitForStateAsync(a, "Succeeded")).GetProperty("progress").GetProperty("succeeded").GetInt64().ShouldBe(3);
        (await CountsAsync(b)).ShouldBe((Queued: 1L, Running: 0L, Succeeded: 1L), "an image of an attempt not yet made is not taken");
        (await Client.GetJobAsync(b)).GetProperty("state").GetString().ShouldBe("Running");

        // The late start of a finished item, in a batch with a real one, moves only the real one.
        await using (var scope = fixture.Factory.Services.CreateAsyncScope())
        {
            var ledger = scope.ServiceProvider.GetRequiredService<ItemLedger>();
            await ledger.StartedAsync([Started(a, itemsA[2]), Started(b, itemsB[1])], CancellationToken.None);
            await ledger.RenderedAsync([Rendered(b, itemsB[1])], CancellationToken.None);
        }

        (await CountsAsync(a)).ShouldBe((Queued: 0L, Running: 0L, Succeeded: 3L));
        (await CountsAsync(b)).ShouldBe((Queued: 0L, Running: 0L, Succeeded: 2L));
        await Client.WaitForStateAsync(b, "Succeeded");
    }

    private async Task<Guid> SubmitAsync(int count)
    {
        var job = JobsClient.ValidJob();
        job["count"] = count;
        return (await Client.SubmitAsync(job)).Id();
    }

    private static ItemStarted Started(Guid jobId, RenderItem item) =>
        new(item.ItemId, jobId, item.Attempt, "worker-batch", DateTimeOffset.UtcNow);

    private static ItemRendered Rendered(Guid jobId, RenderItem item) =>
        new(item.ItemId, jobId, item.Attempt, item.OutputKey, "worker-batch", TimeSpan.FromMilliseconds(5));

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

    private async Task<ItemState> StateAsync(Guid itemId)
    {
        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        return await db.Items.AsNoTracking().Where(i => i.Id == itemId).Select(i => i.State).SingleAsync();
    }
}

/// <summary>The batch ledger on the real PostgreSQL.</summary>
public sealed class PostgresLedgerBatchTests(PostgresCoordinatorFixture fixture)
    : LedgerBatchTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>The batch ledger on embedded SQLite.</summary>
public sealed class SqliteLedgerBatchTests(SqliteCoordinatorFixture fixture)
    : LedgerBatchTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
