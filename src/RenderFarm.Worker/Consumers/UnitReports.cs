using MassTransit;
using RenderFarm.Contracts;

namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Sends one unit's starts and images to the coordinator, per item or per unit (<see cref="UnitReportMode"/>). Per
/// unit, starts and images are held to travel together (<see cref="ItemsStarted"/>, <see cref="ItemsRendered"/>, starts
/// first): at most one report window after the first was held, at the end of a render batch that took the window or
/// longer, and at the end of the unit. A batch's starts are reported when it begins, not when the unit is taken, so an
/// item counts as running only once it is: the unit's first batch, and any batch after one that took the window, sends
/// its starts at once (a slow render would otherwise hold them); fast batches' starts wait with the images. What is
/// held of images is already stored; only its report waits.
/// </summary>
/// <remarks>
/// Hand-written because what decides a flush is the render loop's own rhythm (a batch's length, the unit's end), which
/// a general-purpose batcher (MassTransit batches the consuming side, not publishing) cannot see.
/// </remarks>
internal sealed class UnitReports(ConsumeContext context, UnitReportMode mode, TimeSpan window, TimeProvider time)
{
    private readonly List<ItemStarted> _heldStarts = [];
    private readonly List<ItemRendered> _held = [];
    private long _firstHeldAt;
    private bool _anyBatch;
    private bool _lastBatchSlow;

    /// <summary>Images stored and not yet reported.</summary>
    public int Held => _held.Count;

    /// <summary>Reports the starts of a batch about to render: one message each per item; per unit, as the type says.</summary>
    public async Task StartedAsync(IReadOnlyList<ItemStarted> starts, CancellationToken cancellationToken)
    {
        if (starts.Count == 0)
        {
            return;
        }

        if (mode == UnitReportMode.PerItem)
        {
            foreach (var start in starts)
            {
                await context.Publish(start, cancellationToken);
            }

            return;
        }

        Hold();
        _heldStarts.AddRange(starts);
        var first = !_anyBatch;
        _anyBatch = true;
        if (first || _lastBatchSlow || time.GetElapsedTime(_firstHeldAt) >= window)
        {
            await FlushAsync(cancellationToken);
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

        Hold();
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
    public Task BatchDoneAsync(TimeSpan batchTook, CancellationToken cancellationToken)
    {
        _lastBatchSlow = batchTook >= window;
        return _heldStarts.Count + _held.Count > 0 && (_lastBatchSlow || time.GetElapsedTime(_firstHeldAt) >= window)
            ? FlushAsync(cancellationToken)
            : Task.CompletedTask;
    }

    /// <summary>Sends every held start in one message, then every held image in one.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_heldStarts.Count > 0)
        {
            ItemStarted[] starts = [.. _heldStarts];
            await context.Publish(new ItemsStarted(starts), cancellationToken);
            _heldStarts.Clear();
        }

        if (_held.Count > 0)
        {
            ItemRendered[] items = [.. _held];
            await context.Publish(new ItemsRendered(items), cancellationToken);
            // Cleared only once sent: a failed publish leaves them held, so a later flush (or the unit's redelivery) still reports them.
            _held.Clear();
        }
    }

    private void Hold()
    {
        if (_heldStarts.Count + _held.Count == 0)
        {
            _firstHeldAt = time.GetTimestamp();
        }
    }
}
