namespace RenderFarm.Storage;

/// <summary>
/// Stores the farm's artifacts (rendered images, model files) under string keys such as
/// <c>jobs/{jobId}/000001.png</c>; see <see cref="ArtifactKeys"/>.
/// </summary>
/// <remarks>
/// Keys are relative, '/'-separated paths: no leading or trailing '/', no empty, "." or ".." segments, no '\',
/// at most 512 characters. An invalid key raises <see cref="ArgumentException"/> in every implementation.
/// A put replaces any object under the same key as a whole: a reader sees the old bytes or the new ones, never a mix.
/// Failures of the backing service other than a missing key surface as <see cref="ArtifactStoreException"/>.
/// </remarks>
public interface IArtifactStore
{
    /// <summary>
    /// Writes <paramref name="content"/> (read to its end; its length need not be known) under <paramref name="key"/>,
    /// replacing an existing object. Large objects are uploaded in parts.
    /// </summary>
    /// <param name="key">The artifact key.</param>
    /// <param name="content">The bytes to store, read from the stream's current position; not disposed.</param>
    /// <param name="contentType">The MIME type, e.g. <c>image/png</c>; the local store does not keep it.</param>
    /// <param name="cancellationToken">Cancels the upload; a cancelled put leaves any previous object in place.</param>
    Task PutAsync(string key, Stream content, string contentType, CancellationToken cancellationToken);

    /// <summary>Opens the object under <paramref name="key"/> for reading; the caller disposes the stream.</summary>
    /// <exception cref="ArtifactNotFoundException">Nothing is stored under <paramref name="key"/>.</exception>
    Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken);

    /// <summary>Whether an object is stored under <paramref name="key"/>.</summary>
    Task<bool> ExistsAsync(string key, CancellationToken cancellationToken);

    /// <summary>
    /// A URL from which anyone holding it can GET the object for <paramref name="lifetime"/> (S3: a presigned URL;
    /// between 1 second and 7 days), or <see langword="null"/> where the store has no URLs (the local folder store).
    /// The URL is made without checking that the object exists; fetching a missing one answers 404.
    /// </summary>
    Task<Uri?> GetDownloadUrlAsync(string key, TimeSpan lifetime, CancellationToken cancellationToken);

    /// <summary>
    /// Every object whose key starts with <paramref name="prefix"/> (a plain string prefix, as in S3:
    /// <c>jobs/ab</c> also matches <c>jobs/abc/…</c>; end it with '/' to mean a folder), in ordinal key order.
    /// An empty prefix lists everything.
    /// </summary>
    IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Removes the object under <paramref name="key"/>; removing a missing key is not an error.</summary>
    Task DeleteAsync(string key, CancellationToken cancellationToken);
}

/// <summary>One stored object, as listed by <see cref="IArtifactStore.ListAsync"/>.</summary>
/// <param name="Key">The artifact key.</param>
/// <param name="Size">Its length in bytes.</param>
/// <param name="LastModified">When it was last written.</param>
public sealed record ArtifactInfo(string Key, long Size, DateTimeOffset LastModified);
