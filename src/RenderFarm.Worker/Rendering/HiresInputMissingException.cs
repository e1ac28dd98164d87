namespace RenderFarm.Worker.Rendering;

/// <summary>
/// A hires item's input (the base render or a finished tile) is not in the artifact store. The coordinator releases
/// tiles only once the base is stored and the stitch only once every tile is, so this is a storage fault (a lost or
/// late object) that another attempt may not meet: it fails the item as retryable, naming the key.
/// </summary>
public sealed class HiresInputMissingException : Exception
{
    public HiresInputMissingException()
    {
    }

    public HiresInputMissingException(string message)
        : base(message)
    {
    }

    public HiresInputMissingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public HiresInputMissingException(string key, string message, Exception? innerException)
        : base(message, innerException)
    {
        Key = key;
    }

    /// <summary>The artifact key that was not found.</summary>
    public string? Key { get; }
}
