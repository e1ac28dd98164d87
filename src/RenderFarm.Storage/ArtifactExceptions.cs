namespace RenderFarm.Storage;

/// <summary>Nothing is stored under the requested key.</summary>
/// <remarks>Derives from <see cref="KeyNotFoundException"/> so callers may catch either.</remarks>
public sealed class ArtifactNotFoundException : KeyNotFoundException
{
    public ArtifactNotFoundException()
    {
    }

    public ArtifactNotFoundException(string message)
        : base(message)
    {
    }

    public ArtifactNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ArtifactNotFoundException(string key, string message, Exception? innerException)
        : base(message, innerException)
    {
        Key = key;
    }

    /// <summary>The key that was not found.</summary>
    public string? Key { get; }

    internal static ArtifactNotFoundException For(string key, Exception? innerException = null) =>
        new(key, $"No artifact is stored under '{key}'.", innerException);
}

/// <summary>The store's backing service failed or refused a request (other than a missing key).</summary>
public class ArtifactStoreException : Exception
{
    public ArtifactStoreException()
    {
    }

    public ArtifactStoreException(string message)
        : base(message)
    {
    }

    public ArtifactStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>
    /// The service could not be reached or answered a server-side error (connection refused or reset, 5xx, 408, 429):
    /// the same request may pass once the service is back. False for refusals that repeat on every try.
    /// </summary>
    public bool Unreachable { get; init; }
}

/// <summary>The S3 service refused the configured credentials (wrong access key or secret, or no permission).</summary>
public sealed class ArtifactStoreAccessDeniedException : ArtifactStoreException
{
    public ArtifactStoreAccessDeniedException()
    {
    }

    public ArtifactStoreAccessDeniedException(string message)
        : base(message)
    {
    }

    public ArtifactStoreAccessDeniedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
