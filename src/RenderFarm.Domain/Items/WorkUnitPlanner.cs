namespace RenderFarm.Domain.Items;

/// <summary>
/// Groups items into work units: runs of consecutive items with the same <see cref="BatchKey"/>, at most
/// <see cref="MaxItemsPerUnit"/> long. Streams its input, so it plans a million items in constant memory.
/// </summary>
/// <remarks>
/// Only consecutive items are grouped (no reordering): <see cref="SweepExpansion"/> already orders items so
/// equal keys are adjacent, and keeping order keeps dispatch fair and the plan reproducible.
/// </remarks>
public sealed class WorkUnitPlanner
{
    /// <summary>Eight 512² latents fit beside an SD 1.5 UNet on an 8 GB card and amortise the per-call overhead.</summary>
    public const int DefaultMaxItemsPerUnit = 8;

    /// <param name="maxItemsPerUnit">Largest unit; 1 disables batching.</param>
    public WorkUnitPlanner(int maxItemsPerUnit = DefaultMaxItemsPerUnit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxItemsPerUnit);
        MaxItemsPerUnit = maxItemsPerUnit;
    }

    public int MaxItemsPerUnit { get; }

    /// <summary>Plans units of <see cref="ItemSpec"/>s by their own <see cref="ItemSpec.BatchKey"/>.</summary>
    public IEnumerable<IReadOnlyList<ItemSpec>> Plan(IEnumerable<ItemSpec> items) => Plan(items, static i => i.BatchKey);

    /// <summary>Plans units of any item representation (e.g. persisted rows) given how to read its key.</summary>
    public IEnumerable<IReadOnlyList<T>> Plan<T>(IEnumerable<T> items, Func<T, BatchKey> keyOf)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(keyOf);
        return PlanIterator(items, keyOf);
    }

    private IEnumerable<IReadOnlyList<T>> PlanIterator<T>(IEnumerable<T> items, Func<T, BatchKey> keyOf)
    {
        var unit = new List<T>(MaxItemsPerUnit);
        BatchKey key = default;
        foreach (var item in items)
        {
            var itemKey = keyOf(item);
            if (unit.Count > 0 && (unit.Count == MaxItemsPerUnit || itemKey != key))
            {
                yield return unit;
                unit = new List<T>(MaxItemsPerUnit);
            }

            key = itemKey;
            unit.Add(item);
        }

        if (unit.Count > 0)
        {
            yield return unit;
        }
    }
}
