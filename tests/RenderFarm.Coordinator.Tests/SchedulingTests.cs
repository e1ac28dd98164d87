using System.Globalization;
using Microsoft.EntityFrameworkCore;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// What runs next is decided in the database: the dispatcher keeps only a window of unstarted units on the queue and
/// fills it by priority, then by fair share. The test stands in for the workers: it starts and completes the units that
/// arrive, one at a time, and watches what the dispatcher sends next.
/// </summary>
public abstract class SchedulingTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    /// <summary>The shared queue's window with no live worker: one worker's worth, the tests' units of the tests' unit size.</summary>
    private const int Window = SchedulingSettings.UnitsPerWorker * CoordinatorFactory.WorkUnitSize;

    private HttpClient Client => fixture.Client;

    private BusProbe Probe => fixture.Probe;

    [Fact]
    public async Task A_large_job_puts_only_the_window_on_the_queue_and_each_start_makes_room_for_the_next_unit_in_order()
    {
        Probe.ClearArrivals();
        var id = await SubmitAsync(count: 90, priority: 0);
        await using var cleanup = Canceling(id);

        var units = await Probe.UnitsAsync(id, Window);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(500))).ShouldBeFalse("the window is full");
        units.SelectMany(u => u.Items).Select(i => i.Index).ShouldBe([0, 1, 2, 3, 4, 5]);
        await Eventually(async () => await QueryAsync(db => db.Outbox.CountAsync(o => o.JobId == id)) == (90 / CoordinatorFactory.WorkUnitSize) - 2);
        (await QueryAsync(db => db.Items.CountAsync(i => i.JobId == id && i.AssignedAt != null))).ShouldBe(Window);

        await StartAsync(units[0]);
        var next = await Probe.NextUnitAsync(id);

        next.Items.Select(i => i.Index).ShouldBe([6, 7, 8]);
        (await Probe.AnyUnitWithinAsync(id, TimeSpan.FromMilliseconds(300))).ShouldBeFalse("one start made room for one unit");
        await CancelAsync(id);
        // The cancel takes the job's unsent units out of the outbox with it.
        await Eventually(async () => await QueryAsync(db => db.Outbox.CountAsync(o => o.JobId == id)) == 0);
    }

    [Fact]
    public async Task A_higher_priority_job_goes_before_the_lower_priority_units_already_waiting()
    {
        Probe.ClearArrivals();
        var low = await SubmitAsync(count: 30, priority: 0);
        var pending = new Queue<RenderWorkUnit>([await Probe.NextArrivalAsync(), await Probe.NextArrivalAsync()]);
        var high = await SubmitAsync(count: 6, priority: 10);
        await using var cleanup = Canceling(low, high);

        var order = await TakeTurnsAsync(pending, 4, id => id == high ? "high" : id == low ? "low" : id.ToString());

        order.ShouldBe(["high", "high", "low", "low"]);
        (await Client.WaitForStateAsync(high, "Succeeded")).GetProperty("priority").GetInt32().ShouldBe(10);
        (await Client.GetJobAsync(low)).GetProperty("state").GetString().ShouldBe("Running");
    }

    [Fact]
    public async Task Jobs_of_equal_priority_take_turns_so_a_later_job_does_not_wait_for_an_earlier_one()
    {
        Probe.ClearArrivals();
        var first = await SubmitAsync(count: 30, priority: 0);
        var pending = new Queue<RenderWorkUnit>([await Probe.NextArrivalAsync(), await Probe.NextArrivalAsync()]);
        var second = await SubmitAsync(count: 30, priority: 0);
        await using var cleanup = Canceling(first, second);

        var order = await TakeTurnsAsync(pending, 6, id => id == first ? "first" : id == second ? "second" : id.ToString());

        order.ShouldBe(["second", "first", "second", "first", "second", "first"]);
    }

    /// <summary>Completes the oldest pending unit, waits for the unit that takes its place, <paramref name="steps"/> times; returns whose each was.</summary>
    private async Task<List<string>> TakeTurnsAsync(Queue<RenderWorkUnit> pending, int steps, Func<Guid, string> name)
    {
        var order = new List<string>();
        for (var step = 0; step < steps; step++)
        {
            await CompleteAsync(pending.Dequeue());
            var next = await Probe.NextArrivalAsync();
            order.Add(name(next.JobId));
            pending.Enqueue(next);
        }

        return order;
    }

    private async Task<Guid> SubmitAsync(int count, int priority)
    {
        var job = JobsClient.ValidJob();
        job["count"] = count;
        job["priority"] = priority;
        return (await Client.SubmitAsync(job)).Id();
    }

    /// <summary>
    /// Reports each item's image (the ledger takes a queued item straight to succeeded): its window room and its job's
    /// share of the farm are freed in the same transaction, so what the dispatcher sends next does not depend on
    /// when a separate start would have been recorded.
    /// </summary>
    private async Task CompleteAsync(RenderWorkUnit unit)
    {
        foreach (var item in unit.Items)
        {
            await Probe.Bus.Publish(new ItemRendered(item.ItemId, unit.JobId, item.Attempt, item.OutputKey, "worker-sched", TimeSpan.Zero));
        }
    }

    /// <summary>Starts the unit's items, as a worker does when it takes the unit.</summary>
    private async Task StartAsync(RenderWorkUnit unit)
    {
        foreach (var item in unit.Items)
        {
            await Probe.Bus.Publish(new ItemStarted(item.ItemId, unit.JobId, item.Attempt, "worker-sched", DateTimeOffset.UtcNow));
        }
    }

    /// <summary>Cancels the jobs when the test ends, pass or fail, so the class's next test starts with an empty window.</summary>
    private AsyncCleanup Canceling(params Guid[] ids) => new(async () =>
    {
        foreach (var id in ids)
        {
            await CancelAsync(id);
        }
    });

    private sealed class AsyncCleanup(Func<Task> action) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await action();
    }

    private async Task CancelAsync(Guid id)
    {
        using var response = await Client.PostAsync($"/v1/jobs/{id}/cancel", null);
        await Eventually(async () => await QueryAsync(db => db.Items.CountAsync(i => i.JobId == id && i.State == ItemState.Queued)) == 0);
    }

    private Task<T> QueryAsync<T>(Func<CoordinatorDbContext, Task<T>> query) => fixture.QueryAsync(query);

    private static async Task Eventually(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("The condition did not become true in time.");
            }

            await Task.Delay(50);
        }
    }
}

/// <summary>A coordinator with the dispatcher's default window and fair share (the behaviour tests' fixtures widen the window).</summary>
public sealed class PostgresSchedulingFixture : PostgresCoordinatorFixture
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = SchedulingSettings.Defaults;
}

/// <summary>See <see cref="PostgresSchedulingFixture"/>.</summary>
public sealed class SqliteSchedulingFixture : SqliteCoordinatorFixture
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = SchedulingSettings.Defaults;
}

internal static class SchedulingSettings
{
    /// <summary>
    /// A window of two units, whatever the default: these tests are about the order within a window, and their
    /// expectations (which units arrive, which wait) are written for two. The default's depth is checked against
    /// RabbitMQ in the integration tests' DispatchWindowTests.
    /// </summary>
    public const int UnitsPerWorker = 2;

    public static readonly IReadOnlyDictionary<string, string?> Defaults = new Dictionary<string, string?>
    {
        ["Coordinator:Dispatcher:UnitsPerWorker"] = UnitsPerWorker.ToString(CultureInfo.InvariantCulture),
        ["Coordinator:Dispatcher:FairShare"] = nameof(FairSharePolicy.LeastInFlight),
    };
}

public sealed class PostgresSchedulingTests(PostgresSchedulingFixture fixture)
    : SchedulingTests<PostgresSchedulingFixture>(fixture), IClassFixture<PostgresSchedulingFixture>;

public sealed class SqliteSchedulingTests(SqliteSchedulingFixture fixture)
    : SchedulingTests<SqliteSchedulingFixture>(fixture), IClassFixture<SqliteSchedulingFixture>;
