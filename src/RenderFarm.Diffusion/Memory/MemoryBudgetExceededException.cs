namespace RenderFarm.Diffusion.Memory;

/// <summary>
/// (Not an <see cref="OutOfMemoryException"/>: nothing ran out; the process is healthy and can take the next render.)
/// A render that would not fit its memory budget, refused before it ran (or stopped by ONNX Runtime's capped arena
/// while running): names what it needs, the budget, and the largest square size that fits, so a caller can retry
/// smaller or place it on a larger worker instead of taking the machine down.
/// </summary>
public sealed class MemoryBudgetExceededException : Exception
{
    public MemoryBudgetExceededException(string message) : base(message) { }
    public MemoryBudgetExceededException(string message, Exception innerException) : base(message, innerException) { }

    public MemoryBudgetExceededException(long requiredBytes, long budgetBytes, int largestSquareThatFits, string detail, Exception? innerException = null)
        : base(Describe(requiredBytes, budgetBytes, largestSquareThatFits, detail), innerException)
    {
        RequiredBytes = requiredBytes;
        BudgetBytes = budgetBytes;
        LargestSquareThatFits = largestSquareThatFits;
    }

    /// <summary>Predicted (or, from ONNX Runtime, requested) peak bytes; 0 when unknown.</summary>
    public long RequiredBytes { get; }
    public long BudgetBytes { get; }
    /// <summary>Side of the largest square image (pixels, multiple of 8) that fits the budget with some strategy; 0 when none does.</summary>
    public int LargestSquareThatFits { get; }

    private static string Describe(long required, long budget, int largest, string detail) =>
        $"The render needs {(required > 0 ? ByteSize.Format(required) : "more memory")} but the memory budget is {ByteSize.Format(budget)}" +
        (largest > 0 ? $"; the largest square image that fits is {largest}x{largest}" : "; no image size fits this budget") +
        (detail.Length > 0 ? $" ({detail})." : ".");
}
