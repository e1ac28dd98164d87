using System.Threading.Channels;
using Microsoft.Extensions.Options;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Worker.Slots;

/// <summary>
/// The process's slots and which of them are free. The render consumer's concurrency equals the slot count, so
/// a delivery always finds a free slot; the wait only covers the moment between a release and the next take.
/// </summary>
public sealed class WorkerSlotPool : IDisposable
{
    private readonly Channel<WorkerSlot> _free;

    public WorkerSlotPool(IOptions<WorkerOptions> options, Func<IItemRenderer> rendererFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(rendererFactory);
        var count = options.Value.Slots;
        Slots = Enumerable.Range(0, count).Select(i => new WorkerSlot(i, options.Value.SlotId(i), rendererFactory())).ToArray();
        _free = Channel.CreateBounded<WorkerSlot>(count);
        foreach (var slot in Slots)
        {
            _free.Writer.TryWrite(slot);
        }
    }

    public IReadOnlyList<WorkerSlot> Slots { get; }

    /// <summary>Takes a free slot until the returned lease is disposed.</summary>
    public async ValueTask<SlotLease> AcquireAsync(CancellationToken cancellationToken) =>
        new(this, await _free.Reader.ReadAsync(cancellationToken));

    private void Release(WorkerSlot slot) => _free.Writer.TryWrite(slot);

    public void Dispose()
    {
        foreach (var slot in Slots)
        {
            slot.Dispose();
        }
    }

    /// <summary>Holds a slot; disposing returns it to the pool.</summary>
    public sealed class SlotLease : IDisposable
    {
        private readonly WorkerSlotPool _pool;
        private int _released;

        internal SlotLease(WorkerSlotPool pool, WorkerSlot slot)
        {
            _pool = pool;
            Slot = slot;
        }

        public WorkerSlot Slot { get; }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                _pool.Release(Slot);
            }
        }
    }
}
