using MassTransit;
using RenderFarm.Contracts;

namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Sends one unit's starts and images to the coordinator, per item or per unit (<see cref="UnitReportMode"/>). Per
/// unit, every start goes out in one <see cref="ItemsStarted"/> and the images are held to travel together in
/// <see cref="ItemsRendered"/>: at most one report window after the first was held, at the end of a render batch that
/// took the window or longer, and at the end of the unit. What it holds is already stored; only its report waits.
/// </summary>
/// <remarks>
/// Hand-written because what decides a flush is the render loop's own rhythm (a batch's length, the unit's end), which
/// a general-purpose batcher (MassTransit batches the consuming side, not publishing) cannot see.
/// </remarks>
internal sealed class UnitReports(ConsumeContext context, UnitReportMode mode, TimeSpan window, TimeProvider time)
{
    private readonly List<ItemRendered> _held = [];
    private long _firstHeldAt;

    /// <summary>Images stored and not yet reported.</summary>
    public int Held => _held.Count;

    /// <summary>Reports the starts of <paramref name="starts"/>: one message each per item, one in all per unit.</summary>
    public async Task StartedAsync(IReadOnlyList<ItemStarted> starts, CancellationToken cancellationToken)
    {
        if (starts.Count == 0)
        {
            return;
        }

        if (mode == UnitReportMode.PerUnit)
        {
            await context.Publish(new ItemsStarted(starts), cancellationToken);
            return;
        }

        foreach (var start in starts)
        {
            await context.Publish(start, cancellationToken);
        }
    }

    /// <summary>Reports a stored image: at once per item; per unit, held with the others unless the oldest held has waited the window.</summary>
    public async Task RenderedAsync(ItemRendered rendered, CancellationToken cancellationToken)
    {
        if (mode == UnitReportMode.PerItem)
        {
            await context.Publish(rendered, cancellationToken);
            return;
        }

        if (_held.Count == 0)
        {
            _firstHeldAt = time.GetTimestamp();
        }

        _held.Add(rendered);
        if (time.GetElapsedTime(_firstHeldAt) >= window)
        {
            await FlushAsync(cancellationToken);
        }
    }

    /// <summary>
    /// After a render batch: sends what is held when this batch took the window or longer (the next one likely will
    /// too, and holding across it would delay the reports that long) or the oldest held has waited the window.
    /// </summary>
    public Task BatchDoneAsync(TimeSpan batchTook, CancellationToken cancellationToken) =>
        _held.Count > 0 && (batchTook >= window || time.GetElapsedTime(_firstHeldAt) >= window)
            ? FlushAsync(cancellationToken)
            : Task.CompletedTask;

    /// <summary>Sends every held image in one message.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_held.Count == 0)
        {
            return;
        }

        ItemRendered[] items = [.. _held];
        await context.Publish(new ItemsRendered(items), cancellationToken);
        // Cleared only once sent: a failed publish leaves them held, so a later flush (or the unit's redelivery) still reports them.
        _held.Clear();
    }
}
