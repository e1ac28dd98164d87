namespace RenderFarm.Storage;

/// <summary>Conveniences over <see cref="IArtifactStore"/> that every store gets for free.</summary>
public static class ArtifactStoreExtensions
{
    /// <summary>The whole object under <paramref name="key"/>, for small inputs (init images, masks, tiles).</summary>
    /// <exception cref="ArtifactNotFoundException">Nothing is stored under <paramref name="key"/>.</exception>
    public static async Task<byte[]> ReadAllBytesAsync(this IArtifactStore store, string key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        await using var stream = await store.OpenReadAsync(key, cancellationToken);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }
}
