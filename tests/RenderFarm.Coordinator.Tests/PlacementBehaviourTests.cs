using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Threading.Channels;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Messaging;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// Capability-aware placement through HTTP and the bus, on both providers: fake workers heartbeat their capacity
/// and listen on their own queues, as real workers do.
/// </summary>
public abstract class PlacementBehaviourTests<TFixture>(TFixture fixture)
    where TFixture : CoordinatorFixture
{
    private const long SmallSide = 256;
    private const long LargeSide = 1024;

    private HttpClient Client => fixture.Client;

    [Fact]
    public async Task A_job_only_the_large_worker_can_take_goes_to_its_own_queue_and_a_small_job_to_the_shared_queue()
    {
        await using var fleet = new FakeFleet(fixture);
        var small = await fleet.StartAsync("small", SmallSide, residentSide: 128, budget: 600L << 20, strategy: "sequential+tiled-vae");
        var large = await fleet.StartAsync("large", LargeSide, residentSide: 512, budget: 6L << 30, strategy: "resident");
        var workers = await fleet.WaitUntilListedAsync();

        var bigJob = JobsClient.ValidJob("only the large worker fits this");
        bigJob["width"] = 512;
        bigJob["height"] = 512;
        bigJob["count"] = 2;
        var bigId = (await Client.SubmitAsync(bigJob)).Id();
        var unit = await large.NextUnitAsync(bigId);
        var smallId = (await Client.SubmitAsync(JobsClient.ValidJob("anyone can take this"))).Id();
        var shared = await fixture.Probe.NextUnitAsync(smallId);

        unit.Items.Count.ShouldBe(2);
        unit.Items.ShouldAllBe(i => i.Width == 512 && i.Attempt == 1);
        shared.Items.Single().Width.ShouldBe(64);
        (await small.AnyUnitWithinAsync(TimeSpan.FromMilliseconds(300))).ShouldBeFalse();
        var assigned = await QueryAsync(db => db.Items.Where(i => i.JobId == bigId).Select(i => i.AssignedWorkerId).ToListAsync());
        assigned.ShouldAllBe(w => w == large.Id);
        (await QueryAsync(db => db.Items.Where(i => i.JobId == smallId).Select(i => i.AssignedWorkerId).SingleAsync())).ShouldBeNull();

        // GET /v1/workers tells the two apart: budgets, strategies, what each can plan, and their own queues.
        var s = workers[small.Id];
        var l = workers[large.Id];
        s.GetProperty("memoryBudgetBytes").GetInt64().ShouldBe(600L << 20);
        l.GetProperty("memoryBudgetBytes").GetInt64().ShouldBe(6L << 30);
        s.GetProperty("strategy").GetString().ShouldBe("sequential+tiled-vae");
        l.GetProperty("strategy").GetString().ShouldBe("resident");
        s.GetProperty("maxPixels").GetInt64().ShouldBe(SmallSide * SmallSide);
        s.GetProperty("maxSquareSide").GetInt32().ShouldBe((int)SmallSide);
        l.GetProperty("maxSquareSide").GetInt32().ShouldBe((int)LargeSide);
        l.GetProperty("residentMaxPixels").GetInt64().ShouldBe(512L * 512);
        l.GetProperty("installedModels")[0].GetString().ShouldBe("tiny-sd");
        l.GetProperty("renderQueue").GetString().ShouldBe(QueueNames.WorkerQueue(large.Id));
    }

    [Fact]
    public async Task A_job_no_live_worker_can_take_is_refused_with_400_naming_the_largest_size_the_fleet_can_take()
    {
        await using var fleet = new FakeFleet(fixture);
        await fleet.StartAsync("small", SmallSide, residentSide: 128, budget: 600L << 20, strategy: "sequential");
        var large = await fleet.StartAsync("large", LargeSide, residentSide: 512, budget: 6L << 30, strategy: "resident");
        await fleet.WaitUntilListedAsync();
        var job = JobsClient.ValidJob("too large for everyone");
        job["width"] = 2048;
        job["height"] = 2048;

        using var response = await Client.PostRawAsync(job.ToJsonString());

        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, body);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        var message = JsonDocument.Parse(body).RootElement.GetProperty("errors").GetProperty("width")[0].GetString()!;
        message.ShouldContain("2048×2048");
        message.ShouldContain("tiny-sd");
        message.ShouldContain("the largest the fleet can take is 1024×1024");
        message.ShouldContain(large.Id);
        message.ShouldContain("6 GiB");
    }

    [Fact]
    public async Task A_queued_item_whose_assigned_worker_went_silent_is_placed_again_with_a_new_attempt()
    {
        await using var fleet = new FakeFleet(fixture);
        await fleet.StartAsync("small", SmallSide, residentSide: 128, budget: 600L << 20, strategy: "sequential");
        var doomed = await fleet.StartAsync("doomed", LargeSide, residentSide: 512, budget: 6L << 30, strategy: "resident");
        await fleet.WaitUntilListedAsync();
        var job = JobsClient.ValidJob("placed on a worker that dies");
        job["width"] = 512;
        job["height"] = 512;
        var id = (await Client.SubmitAsync(job)).Id();
        var first = (await doomed.NextUnitAsync(id)).Items.Single();

        // The worker dies before starting the item; another large one joins. No ItemStarted ever comes, so only the
        // rescuer's re-placement can move the item (the dead worker's own queue would keep it forever).
        doomed.Silence();
        var heir = await fleet.StartAsync("heir", LargeSide, residentSide: 512, budget: 6L << 30, strategy: "resident");
        var again = (await heir.NextUnitAsync(id, TimeSpan.FromSeconds(20))).Items.Single();

        first.Attempt.ShouldBe(1);
        again.ItemId.ShouldBe(first.ItemId);
        again.Attempt.ShouldBe(2);
        // The unit can arrive before the dispatcher's transaction (which records the assignment) commits.
        string? assigned = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(15); assigned != heir.Id && DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            assigned = await QueryAsync(db => db.Items.Where(i => i.Id == first.ItemId).Select(i => i.AssignedWorkerId).SingleAsync());
        }

        assigned.ShouldBe(heir.Id);
        var read = await Client.GetJobAsync(id);
        read.GetProperty("progress").GetProperty("queued").GetInt64().ShouldBe(1);
        read.GetProperty("eligibleWorkers").GetInt32().ShouldBe(1);
    }

    private Task<T> QueryAsync<T>(Func<CoordinatorDbContext, Task<T>> query) => fixture.QueryAsync(query);

    /// <summary>
    /// Fake workers: each heartbeats its capacity every 300 ms and receives what is sent to its own queue. Disposing
    /// the fleet drains every worker (and waits until the coordinator has seen it), so the next test starts with
    /// none of these workers live.
    /// </summary>
    private sealed class FakeFleet(CoordinatorFixture fixture) : IAsyncDisposable
    {
        private readonly string _suffix = "-" + Guid.NewGuid().ToString("N")[..6];
        private readonly List<FakeWorker> _workers = [];
        private readonly CancellationTokenSource _stop = new();
        private Task? _beats;

        private IBus Bus => fixture.Probe.Bus;

        public async Task<FakeWorker> StartAsync(string name, long maxSide, long residentSide, long budget, string strategy)
        {
            var id = name + _suffix;
            var worker = new FakeWorker(id, new WorkerHeartbeat(
                id, "test-host", "NVIDIA Test GPU", 24L << 30, 20L << 30, budget,
                ["CUDAExecutionProvider", "CPUExecutionProvider"], ["tiny-sd"], [], WorkerState.Idle, strategy,
                PlacementProperties.DefaultPool, DateTimeOffset.UtcNow, maxSide * maxSide, residentSide * residentSide,
                ["tiny-sd"], QueueNames.WorkerQueue(id)));
            var endpoint = Bus.ConnectReceiveEndpoint(QueueNames.WorkerQueue(id), e => e.Handler<RenderWorkUnit>(context =>
            {
                worker.Received(context.Message);
                return Task.CompletedTask;
            }));
            await endpoint.Ready;
            worker.Endpoint = endpoint;
            lock (_workers)
            {
                _workers.Add(worker);
            }

            await Bus.Publish(worker.Heartbeat with { Timestamp = DateTimeOffset.UtcNow });
            _beats ??= BeatAsync();
            return worker;
        }

        /// <summary>Polls GET /v1/workers until every started worker is listed live; returns them by id.</summary>
        public async Task<Dictionary<string, JsonElement>> WaitUntilListedAsync()
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (true)
            {
                using var response = await fixture.Client.GetAsync("/v1/workers");
                var listed = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
                var ids = Snapshot().Where(w => !w.Silent).Select(w => w.Id).ToHashSet();
                var found = listed.EnumerateArray()
                    .Where(w => ids.Contains(w.GetProperty("id").GetString()!) && w.GetProperty("live").GetBoolean()
                        && w.GetProperty("renderQueue").ValueKind == JsonValueKind.String)
                    .ToDictionary(w => w.GetProperty("id").GetString()!);
                if (found.Count == ids.Count)
                {
                    return found;
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"Workers {string.Join(", ", ids)} were not all listed live: {listed}");
                }

                await Task.Delay(50);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            if (_beats is not null)
            {
                await _beats;
            }

            var workers = Snapshot();
            foreach (var worker in workers)
            {
                await Bus.Publish(worker.Heartbeat with { State = WorkerState.Draining, Timestamp = DateTimeOffset.UtcNow });
                await worker.Endpoint!.StopAsync();
            }

            // Placement of the next test must not see these workers.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            var ids = workers.Select(w => w.Id).ToList();
            while (DateTime.UtcNow < deadline)
            {
                await using var scope = fixture.Factory.Services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
                if (!await db.Workers.AnyAsync(w => ids.Contains(w.Id) && w.State != WorkerState.Draining))
                {
                    break;
                }

                await Task.Delay(50);
            }

            _stop.Dispose();
        }

        private List<FakeWorker> Snapshot()
        {
            lock (_workers)
            {
                return [.. _workers];
            }
        }

        private async Task BeatAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                foreach (var worker in Snapshot().Where(w => !w.Silent))
                {
                    await Bus.Publish(worker.Heartbeat with { Timestamp = DateTimeOffset.UtcNow });
                }

                try
                {
                    await Task.Delay(300, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private sealed class FakeWorker(string id, WorkerHeartbeat heartbeat)
    {
        private readonly ConcurrentDictionary<Guid, Channel<RenderWorkUnit>> _units = new();
        private readonly Channel<RenderWorkUnit> _all = Channel.CreateUnbounded<RenderWorkUnit>();

        public string Id { get; } = id;

        public WorkerHeartbeat Heartbeat { get; } = heartbeat;

        public HostReceiveEndpointHandle? Endpoint { get; set; }

        public bool Silent { get; private set; }

        /// <summary>Stops heartbeating, as a worker that died does (its queue stays, unread).</summary>
        public void Silence() => Silent = true;

        public void Received(RenderWorkUnit unit)
        {
            UnitsOf(unit.JobId).Writer.TryWrite(unit);
            _all.Writer.TryWrite(unit);
        }

        public async Task<RenderWorkUnit> NextUnitAsync(Guid jobId, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
            try
            {
                return await UnitsOf(jobId).Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No work unit for job {jobId} reached worker {Id}'s own queue in time.");
            }
        }

        public async Task<bool> AnyUnitWithinAsync(TimeSpan wait)
        {
            using var cts = new CancellationTokenSource(wait);
            try
            {
                await _all.Reader.ReadAsync(cts.Token);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        private Channel<RenderWorkUnit> UnitsOf(Guid jobId) => _units.GetOrAdd(jobId, _ => Channel.CreateUnbounded<RenderWorkUnit>());
    }
}

/// <summary>Placement on the real PostgreSQL.</summary>
public sealed class PostgresPlacementTests(PostgresCoordinatorFixture fixture)
    : PlacementBehaviourTests<PostgresCoordinatorFixture>(fixture), IClassFixture<PostgresCoordinatorFixture>;

/// <summary>Placement on embedded SQLite and the in-memory bus, as <c>renderfarm serve</c> runs it.</summary>
public sealed class SqlitePlacementTests(SqliteCoordinatorFixture fixture)
    : PlacementBehaviourTests<SqliteCoordinatorFixture>(fixture), IClassFixture<SqliteCoordinatorFixture>;
