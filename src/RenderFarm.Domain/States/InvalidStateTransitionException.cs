namespace RenderFarm.Domain.States;

/// <summary>A caller asked for a state change the transition table forbids.</summary>
public sealed class InvalidStateTransitionException : InvalidOperationException
{
    public InvalidStateTransitionException()
    {
    }

    public InvalidStateTransitionException(string message)
        : base(message)
    {
    }

    public InvalidStateTransitionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public InvalidStateTransitionException(string kind, string from, string to)
        : base($"A {kind} cannot move from {from} to {to}.")
    {
        Kind = kind;
        From = from;
        To = to;
    }

    /// <summary>"job" or "item".</summary>
    public string? Kind { get; }

    public string? From { get; }

    public string? To { get; }
}
