namespace RenderFarm.Domain.States;

/// <summary>The allowed moves between <see cref="ItemState"/>s; see each member's comment for who makes them.</summary>
public static class ItemStateMachine
{
    private static readonly Dictionary<ItemState, ItemState[]> Allowed = new()
    {
        [ItemState.Queued] = [ItemState.Running, ItemState.Canceled],
        [ItemState.Running] = [ItemState.Succeeded, ItemState.Retrying, ItemState.Failed, ItemState.Canceled],
        // Retrying goes through Queued rather than straight to Running so there is one path onto a worker:
        // the dispatcher only ever picks up Queued items.
        [ItemState.Retrying] = [ItemState.Queued, ItemState.Canceled],
        [ItemState.Succeeded] = [],
        [ItemState.Failed] = [],
        [ItemState.Canceled] = [],
    };

    /// <summary>True when an item may move from <paramref name="from"/> to <paramref name="to"/>. Staying put is not a move.</summary>
    public static bool CanMove(ItemState from, ItemState to) =>
        Allowed.TryGetValue(from, out var targets) && Array.IndexOf(targets, to) >= 0;

    /// <summary>Returns <paramref name="to"/> when the move is allowed.</summary>
    /// <exception cref="InvalidStateTransitionException">The move is not allowed.</exception>
    public static ItemState Move(ItemState from, ItemState to) =>
        CanMove(from, to) ? to : throw new InvalidStateTransitionException("item", from.ToString(), to.ToString());

    /// <summary>True for states nothing moves an item out of.</summary>
    public static bool IsFinal(ItemState state) => state is ItemState.Succeeded or ItemState.Failed or ItemState.Canceled;
}
