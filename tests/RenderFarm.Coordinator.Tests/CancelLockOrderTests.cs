using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// Cancel against the ledger's row locks on the real PostgreSQL (SQLite has no row locks). A second connection plays
/// the ledger's transaction step by step, so the interleaving is exactly the one under test, not a timing accident.
/// </summary>
public sealed class CancelLockOrderTests(PostgresCoordinatorFixture fixture) : IClassFixture<PostgresCoordinatorFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_cancel_waiting_on_a_held_item_holds_none_the_holder_takes_next()
    {
        // The ledger locks items in id order: it holds the lower one and will take the higher one next. A cancel that
        // locked the job's queued items first (as it once did) held that higher one while waiting: a deadlock.
        var (jobId, low, high) = await TwoItemJobAsync();
        await StartAsync(jobId, low);

        await using var ledger = await OpenAsync();
        await using var tx = await ledger.BeginTransactionAsync();
        await TouchAsync(ledger, tx, low.ItemId);

        var cancel = fixture.Client.PostAsync($"/v1/jobs/{jobId}/cancel", content: null);
        await WaitUntilBlockedAsync(cancel);

        await using (var probe = await OpenAsync())
        {
            // NOWAIT fails at once (55P03) if the blocked cancel already holds the row.
            await using var check = new NpgsqlCommand("SELECT id FROM items WHERE id = @id FOR UPDATE NOWAIT", probe);
            check.Parameters.AddWithValue("id", high.ItemId);
            await Should.NotThrowAsync(() => check.ExecuteScalarAsync(), "the waiting cancel must not hold an item above the one it waits for");
        }

        await TouchAsync(ledger, tx, high.ItemId);
        await tx.CommitAsync();

        (await cancel).StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await ItemStatesAsync(jobId)).ShouldAllBe(s => s == ItemState.Canceled);
    }

    [Fact]
    public async Task A_cancel_chosen_as_a_deadlock_victim_is_run_again()
    {
        // A hires failure cascade locks the waiting parts after the failed item, whatever their ids: here the holder
        // takes the lower item after the higher one, which closes a cycle with the cancel's id-ordered locks.
        var (jobId, low, high) = await TwoItemJobAsync();
        await StartAsync(jobId, high);

        await using var ledger = await OpenAsync();
        await using var tx = await ledger.BeginTransactionAsync();
        // PostgreSQL aborts the transaction whose deadlock check runs first; the cancel's (1 s default) must, so the
        // victim is the cancel, the side under test.
        await using (var slow = new NpgsqlCommand("SET LOCAL deadlock_timeout = '30s'", ledger, tx))
        {
            await slow.ExecuteNonQueryAsync();
        }

        await TouchAsync(ledger, tx, high.ItemId);
        var cancel = fixture.Client.PostAsync($"/v1/jobs/{jobId}/cancel", content: null);
        await WaitUntilBlockedAsync(cancel);

        // Waits for the cancel's lock on the lower item until PostgreSQL breaks the cycle by aborting the cancel.
        await TouchAsync(ledger, tx, low.ItemId);
        await tx.CommitAsync();

        var response = await cancel;
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        (await ItemStatesAsync(jobId)).ShouldAllBe(s => s == ItemState.Canceled);
    }

    private async Task<(Guid JobId, RenderItem Low, RenderItem High)> TwoItemJobAsync()
    {
        var job = JobsClient.ValidJob();
        job["count"] = 2;
        var jobId = (await fixture.Client.SubmitAsync(job)).Id();
        var items = (await fixture.Probe.NextUnitAsync(jobId)).Items.ToDictionary(i => i.ItemId);

        // PostgreSQL's uuid order, which is the order the locks are taken in.
        await using var connection = await OpenAsync();
        await using var read = new NpgsqlCommand("SELECT id FROM items WHERE job_id = @job ORDER BY id", connection);
        read.Parameters.AddWithValue("job", jobId);
        var ids = new List<Guid>();
        await using (var reader = await read.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                ids.Add(reader.GetGuid(0));
            }
        }

        ids.Count.ShouldBe(2);
        return (jobId, items[ids[0]], items[ids[1]]);
    }

    private async Task StartAsync(Guid jobId, RenderItem item)
    {
        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var ledger = scope.ServiceProvider.GetRequiredService<ItemLedger>();
        await ledger.StartedAsync([new ItemStarted(item.ItemId, jobId, item.Attempt, "worker-locks", DateTimeOffset.UtcNow)], CancellationToken.None);
        (await ItemStatesAsync(jobId)).Count(s => s == ItemState.Running).ShouldBe(1);
    }

    private async Task<NpgsqlConnection> OpenAsync()
    {
        string connectionString;
        await using (var scope = fixture.Factory.Services.CreateAsyncScope())
        {
            connectionString = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>().Database.GetConnectionString()!;
        }

        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static async Task TouchAsync(NpgsqlConnection connection, NpgsqlTransaction tx, Guid itemId)
    {
        await using var update = new NpgsqlCommand("UPDATE items SET heartbeat_at = now() WHERE id = @id", connection, tx);
        update.Parameters.AddWithValue("id", itemId);
        (await update.ExecuteNonQueryAsync()).ShouldBe(1);
    }

    /// <summary>Waits until a session of this database waits on a lock: the cancel, blocked behind the held item.</summary>
    private async Task WaitUntilBlockedAsync(Task<HttpResponseMessage> cancel)
    {
        await using var connection = await OpenAsync();
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            cancel.IsCompleted.ShouldBeFalse("the cancel finished without waiting for the held item");
            await using var waiting = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'", connection);
            if ((long)(await waiting.ExecuteScalarAsync())! > 0)
            {
                return;
            }

            await Task.Delay(20);
        }

        throw new TimeoutException($"The cancel did not block on the held item within {Patience}.");
    }

    private async Task<List<ItemState>> ItemStatesAsync(Guid jobId)
    {
        await using var scope = fixture.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        return await db.Items.AsNoTracking().Where(i => i.JobId == jobId).Select(i => i.State).ToListAsync();
    }
}
