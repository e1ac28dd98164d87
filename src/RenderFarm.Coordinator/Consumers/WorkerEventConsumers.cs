using MassTransit;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Placement;
using RenderFarm.Coordinator.Previews;
using RenderFarm.Coordinator.Progress;
using RenderFarm.Coordinator.Telemetry;
using RenderFarm.Telemetry;

namespace RenderFarm.Coordinator.Consumers;

// Thin adapters from the bus to ItemLedger: the rules live there, so they read the same from a test. Each gets its
// own endpoint (named by MassTransit from the type), so a flood of progress never queues in front of completions.

/// <summary>
/// Records that workers started item attempts, a batch at a time: a farm of fast workers reports hundreds of starts a
/// second, and one transaction per batch instead of per item is what lets the coordinator keep up
/// (<see cref="ItemLedger.StartedAsync(IReadOnlyList{ItemStarted}, CancellationToken)"/>).
/// </summary>
internal sealed class ItemStartedConsumer(ItemLedger ledger) : IConsumer<Batch<ItemStarted>>
{
    public Task Consume(ConsumeContext<Batch<ItemStarted>> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ledger.StartedAsync([.. context.Message.Select(m => m.Message)], context.CancellationToken);
    }
}

/// <summary>
/// Records the starts a per-unit worker gathers into one message (<see cref="ItemsStarted"/>), a batch of such
/// messages at a time, through the same ledger call as single starts: an entry is recorded exactly as an
/// <see cref="ItemStarted"/> of its own would be.
/// </summary>
internal sealed class ItemsStartedConsumer(ItemLedger ledger) : IConsumer<Batch<ItemsStarted>>
{
    public Task Consume(ConsumeContext<Batch<ItemsStarted>> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ledger.StartedAsync([.. context.Message.SelectMany(m => m.Message.Items)], context.CancellationToken);
    }
}

/// <summary>Records items' images, a batch at a time, idempotently on (item id, attempt).</summary>
internal sealed class ItemRenderedConsumer(ItemLedger ledger) : IConsumer<Batch<ItemRendered>>
{
    public async Task Consume(ConsumeContext<Batch<ItemRendered>> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var spans = context.Message.Select(m => MessageSpans.Start("item complete", m, m.Message.JobId, m.Message.ItemId)).ToList();
        try
        {
            await ledger.RenderedAsync([.. context.Message.Select(m => m.Message)], context.CancellationToken);
            MessageSpans.End(spans);
        }
        catch (Exception ex)
        {
            MessageSpans.End(spans, ex);
            throw;
        }
    }
}

/// <summary>
/// Records the images a per-unit worker sends gathered (<see cref="ItemsRendered"/>), a batch of such messages at a
/// time, each entry exactly as an <see cref="ItemRendered"/> of its own.
/// </summary>
internal sealed class ItemsRenderedConsumer(ItemLedger ledger) : IConsumer<Batch<ItemsRendered>>
{
    public async Task Consume(ConsumeContext<Batch<ItemsRendered>> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var reports = context.Message.SelectMany(m => m.Message.Items.Select(item => (Context: m, Item: item))).ToList();
        var spans = reports.Select(r => MessageSpans.Start("item complete", r.Context, r.Item.JobId, r.Item.ItemId)).ToList();
        try
        {
            await ledger.RenderedAsync([.. reports.Select(r => r.Item)], context.CancellationToken);
            MessageSpans.End(spans);
        }
        catch (Exception ex)
        {
            MessageSpans.End(spans, ex);
            throw;
        }
    }
}

/// <summary>
/// Batch limits for the start and image consumers, from <see cref="CoordinatorOptions.LedgerBatchSize"/> and
/// <see cref="CoordinatorOptions.LedgerBatchWait"/>. A batch is handed over when it is full or the wait after its first
/// message is over; a failed batch is retried whole, which the ledger's conditional updates make harmless.
/// </summary>
internal static class LedgerBatches
{
    /// <summary>Batches of one endpoint recorded at once; two let one commit while the next is collected.</summary>
    public const int ConcurrencyLimit = 2;

    public static void Configure<TConsumer>(IRegistrationContext context, IConsumerConfigurator<TConsumer> consumer)
        where TConsumer : class
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(consumer);
        var options = context.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
        consumer.Options<BatchOptions>(batch => batch
            .SetMessageLimit(options.LedgerBatchSize)
            .SetTimeLimit(options.LedgerBatchWait)
            .SetConcurrencyLimit(ConcurrencyLimit));
        DatabaseOutageRetry.Configure(context, consumer);
    }
}

/// <summary>Records a failed attempt: retried after backoff or failed for good.</summary>
internal sealed class ItemFailedConsumer(ItemLedger ledger) : IConsumer<ItemFailed>
{
    public async Task Consume(ConsumeContext<ItemFailed> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        // Not a batch: MassTransit's consume span is already in the item's trace; this one names the ledger's part.
        using var span = RenderFarmDiagnostics.CoordinatorActivitySource.StartActivity("item failed");
        span?.SetTag(RenderFarmTags.JobId, context.Message.JobId.ToString());
        span?.SetTag(RenderFarmTags.ItemId, context.Message.ItemId.ToString());
        await ledger.FailedAsync(context.Message, context.CancellationToken);
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

/// <summary>Holds an item's latest preview in memory and announces it on the job's events; never touches the database.</summary>
internal sealed class ItemPreviewedConsumer(PreviewStore previews) : IConsumer<ItemPreviewed>
{
    public Task Consume(ConsumeContext<ItemPreviewed> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        previews.Offer(context.Message);
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
