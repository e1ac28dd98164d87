namespace RenderFarm.Storage.Models;

/// <summary>The store holds no manifest for the model: it was never pushed, or its push did not finish.</summary>
public sealed class ModelNotInStoreException : KeyNotFoundException
{
    public ModelNotInStoreException()
    {
    }

    public ModelNotInStoreException(string message)
        : base(message)
    {
    }

    public ModelNotInStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The model that is missing.</summary>
    public string? Name { get; private init; }

    internal static ModelNotInStoreException For(string name) =>
        new($"Model '{name}' is not in the model store (no {ModelRepository.ManifestKey(name)}); push it with `renderfarm models push DIR --name {name}`.")
        {
            Name = name,
        };
}

/// <summary>A push would replace a model already in the store, and replacing was not asked for.</summary>
public sealed class ModelAlreadyInStoreException : InvalidOperationException
{
    public ModelAlreadyInStoreException()
    {
    }

    public ModelAlreadyInStoreException(string message)
        : base(message)
    {
    }

    public ModelAlreadyInStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// What the store holds for a model does not match its manifest (a file's size or SHA-256 differs), or the manifest
/// itself cannot be read. The fetched copy is discarded; pushing the model again repairs the store.
/// </summary>
public sealed class ModelIntegrityException : IOException
{
    public ModelIntegrityException()
    {
    }

    public ModelIntegrityException(string message)
        : base(message)
    {
    }

    public ModelIntegrityException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The model concerned.</summary>
    public string? Name { get; init; }

    /// <summary>The file that differs, relative to the model folder; null when the manifest is at fault.</summary>
    public string? FilePath { get; init; }
}
