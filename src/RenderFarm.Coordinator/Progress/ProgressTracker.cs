using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Events;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Progress;

/// <summary>
/// Step progress: streamed to SSE subscribers at once, written to the database coalesced (the latest step per
/// item, once per <see cref="ProgressOptions.FlushInterval"/>), so a farm of busy workers costs the database a
/// few statements a second rather than one per step.
/// </summary>
internal sealed class ProgressTracker(JobEventHub hub, IOptions<ProgressOptions> options)
{
    private ConcurrentDictionary<Guid, ItemProgressed> _pending = new();

    public void Record(ItemProgressed message)
    {
        hub.Publish(new JobEvent(JobEventTypes.ItemProgress, message.JobId, ItemId: message.ItemId, Attempt: message.Attempt,
            Step: message.Step, TotalSteps: message.TotalSteps));

        var pending = _pending;
        // Bounded: past the cap only items already tracked are updated; the rest wait for the next flush's room.
        if (pending.Count >= options.Value.MaxPending && !pending.ContainsKey(message.ItemId))
        {
            return;
        }

        pending.AddOrUpdate(message.ItemId, message, (_, old) => old.Attempt > message.Attempt || (old.Attempt == message.Attempt && old.Step >= message.Step) ? old : message);
    }

    /// <summary>Takes everything recorded since the last call.</summary>
    public ICollection<ItemProgressed> Drain() => Interlocked.Exchange(ref _pending, new()).Values;
}

/// <summary>Writes <see cref="ProgressTracker"/>'s coalesced steps on a timer.</summary>
internal sealed partial class ProgressFlusher(
    ProgressTracker tracker,
    IServiceScopeFactory scopes,
    TimeProvider clock,
    IOptions<ProgressOptions> options,
    ILogger<ProgressFlusher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.FlushInterval, clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await FlushAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Progress is advisory: losing one flush only makes the stored step a little older.
                LogFlushFailed(ex);
            }
        }
    }

    internal async Task FlushAsync(CancellationToken cancellationToken)
    {
        var batch = tracker.Drain();
        if (batch.Count == 0)
        {
            return;
        }

        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        // In item id order, as the ledger locks items, so a flush and a ledger batch wait for each other, never deadlock.
        foreach (var p in batch.OrderBy(p => p.ItemId))
        {
            await db.Items
                .Where(i => i.Id == p.ItemId && i.Attempt == p.Attempt && i.State == ItemState.Running && i.StepsDone < p.Step)
                .ExecuteUpdateAsync(s => s.SetProperty(i => i.StepsDone, p.Step).SetProperty(i => i.StepsTotal, p.TotalSteps), cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Writing step progress failed; the next flush writes newer steps")]
    private partial void LogFlushFailed(Exception exception);
}
