using RenderFarm.Contracts;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Worker.Slots;

/// <summary>
/// One render lane of this process, reported to the coordinator as a worker of its own: its id, its warm
/// renderer, and the items it holds right now: those rendering (whose leases its heartbeat renews) and the rest of the
/// work unit it has taken.
/// </summary>
public sealed class WorkerSlot : IDisposable
{
    private readonly Lock _gate = new();
    private readonly HashSet<Guid> _current = [];
    private bool _ready;

    internal WorkerSlot(int index, string workerId, IItemRenderer renderer)
    {
        Index = index;
        WorkerId = workerId;
        Renderer = renderer;
    }

    public int Index { get; }

    public string WorkerId { get; }

    public IItemRenderer Renderer { get; }

    /// <summary>Items of the units this slot has taken and not yet finished, rendering or next, in no particular order.</summary>
    public IReadOnlyList<Guid> CurrentItemIds
    {
        get
        {
            lock (_gate)
            {
                return [.. _current];
            }
        }
    }

    /// <summary>Starting until warm-up ends, then Busy while it holds items and Idle otherwise; Draining overrides all.</summary>
    public WorkerState StateWhen(bool draining)
    {
        if (draining)
        {
            return WorkerState.Draining;
        }

        lock (_gate)
        {
            return !_ready ? WorkerState.Starting : _current.Count > 0 ? WorkerState.Busy : WorkerState.Idle;
        }
    }

    internal void MarkReady()
    {
        lock (_gate)
        {
            _ready = true;
        }
    }

    internal void Begin(IEnumerable<Guid> itemIds)
    {
        lock (_gate)
        {
            _current.UnionWith(itemIds);
        }
    }

    internal void End(IEnumerable<Guid> itemIds)
    {
        lock (_gate)
        {
            _current.ExceptWith(itemIds);
        }
    }

    public void Dispose() => Renderer.Dispose();
}
