using MassTransit;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Placement;
using RenderFarm.Coordinator.Progress;

namespace RenderFarm.Coordinator.Consumers;

// Thin adapters from the bus to ItemLedger: the rules live there, so they read the same from a test or a
// later batch consumer. Each gets its own endpoint (named by MassTransit from the type), so a flood of
// progress never queues in front of completions.

/// <summary>Records that a worker started an item attempt.</summary>
internal sealed class ItemStartedConsumer(ItemLedger ledger) : IConsumer<ItemStarted>
{
    public Task Consume(ConsumeContext<ItemStarted> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ledger.StartedAsync(context.Message, context.CancellationToken);
    }
}

/// <summary>Records an item's image, idempotently on (item id, attempt).</summary>
internal sealed class ItemRenderedConsumer(ItemLedger ledger) : IConsumer<ItemRendered>
{
    public Task Consume(ConsumeContext<ItemRendered> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ledger.RenderedAsync(context.Message, context.CancellationToken);
    }
}

/// <summary>Records a failed attempt: retried after backoff or failed for good.</summary>
internal sealed class ItemFailedConsumer(ItemLedger ledger) : IConsumer<ItemFailed>
{
    public Task Consume(ConsumeContext<ItemFailed> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ledger.FailedAsync(context.Message, context.CancellationToken);
    }
}

/// <summary>Streams step progress and coalesces it for the database.</summary>
internal sealed class ItemProgressedConsumer(ProgressTracker tracker) : IConsumer<ItemProgressed>
{
    public Task Consume(ConsumeContext<ItemProgressed> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        tracker.Record(context.Message);
        return Task.CompletedTask;
    }
}

/// <summary>Keeps the worker's row current (placement reads its capacity from it) and renews the leases of its items.</summary>
internal sealed class WorkerHeartbeatConsumer(ItemLedger ledger, CoordinatorDbContext db) : IConsumer<WorkerHeartbeat>
{
    public async Task Consume(ConsumeContext<WorkerHeartbeat> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        await ledger.HeartbeatAsync(context.Message, context.CancellationToken);
        await Fleet.SaveCapacityAsync(db, context.Message, context.CancellationToken);
    }
}
