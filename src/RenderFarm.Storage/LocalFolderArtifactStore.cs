using System.Runtime.CompilerServices;

namespace RenderFarm.Storage;

/// <summary>
/// Artifacts as files under one folder, for the embedded single-machine farm. A put writes a staging file and renames
/// it over the target, so a reader sees the old file or the whole new one, never a partial write.
/// </summary>
/// <remarks>
/// Unlike S3, a folder cannot hold both a key and keys below it (<c>a</c> and <c>a/b</c>): the second put fails with
/// an <see cref="IOException"/>. The farm's key layout (<see cref="ArtifactKeys"/>) never does that.
/// </remarks>
public sealed class LocalFolderArtifactStore : IArtifactStore
{
    // Staging files live under the root (rename is atomic only within one file system) but outside every key:
    // keys starting with this segment are refused.
    internal const string StagingFolderName = ".staging";

    private readonly string root;
    private readonly string rootWithSeparator;
    private readonly string staging;

    public LocalFolderArtifactStore(string rootFolder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(rootFolder);
        root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(rootFolder));
        rootWithSeparator = root + Path.DirectorySeparatorChar;
        staging = Path.Combine(root, StagingFolderName);
        Directory.CreateDirectory(staging);
    }

    /// <summary>The absolute folder that holds the artifacts.</summary>
    public string Root => root;

    public async Task PutAsync(string key, Stream content, string contentType, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var path = PathFor(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Directory.CreateDirectory(staging);
        var temp = Path.Combine(staging, $"{Guid.NewGuid():N}.partial");
        try
        {
            var file = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                Options = FileOptions.Asynchronous,
                BufferSize = 81920,
            });
            await using (file.ConfigureAwait(false))
            {
                await content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                // On disk before the rename, so a crash cannot leave the new name pointing at missing data.
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathFor(key);
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            // Share Delete: a put renaming over the file, or a delete, must not fail while it is being read.
            Stream stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read | FileShare.Delete,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
                BufferSize = 81920,
            });
            return Task.FromResult(stream);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw ArtifactNotFoundException.For(key, ex);
        }
        catch (UnauthorizedAccessException ex) when (Directory.Exists(path))
        {
            throw ArtifactNotFoundException.For(key, ex);
        }
    }

    public Task<bool> ExistsAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathFor(key);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(File.Exists(path));
    }

    public Task<Uri?> GetDownloadUrlAsync(string key, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        _ = PathFor(key);
        return Task.FromResult<Uri?>(null);
    }

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArtifactKeyRules.ValidatePrefix(prefix);
        // Walk only the deepest folder the prefix names, then filter by the whole prefix as a string, as S3 does.
        var lastSlash = prefix.LastIndexOf('/');
        var start = lastSlash < 0 ? root : Path.Combine(root, prefix[..lastSlash]);
        if (!Directory.Exists(start))
        {
            yield break;
        }

        // The walk is blocking file-system work: off the caller's thread.
        var found = await Task.Run(() => Walk(start, prefix, cancellationToken), cancellationToken).ConfigureAwait(false);
        foreach (var info in found)
        {
            yield return info;
        }
    }

        public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathFor(key);
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            // Already absent: deleting a missing key is not an error.
        }

        return Task.CompletedTask;
    }

    /// <summary>The file for <paramref name="key"/>, after checking it cannot leave the root.</summary>
    internal string PathFor(string key)
    {
        ArtifactKeyRules.ValidateKey(key);
        if (IsStaging(key))
        {
            throw new ArgumentException($"Artifact keys under '{StagingFolderName}/' are reserved for the store's staging files.", nameof(key));
        }

        // The key rules already refuse '..' and absolute keys; the resolved path is checked again because it is what
        // the file system will act on.
        var path = Path.GetFullPath(Path.Combine(root, key.Replace('/', Path.DirectorySeparatorChar)));
        if (!path.StartsWith(rootWithSeparator, StringComparison.Ordinal))
        {
            throw new ArgumentException($"Artifact key '{key}' resolves outside the store's root.", nameof(key));
        }

        return path;
    }

    private List<ArtifactInfo> Walk(string start, string prefix, CancellationToken cancellationToken)
    {
        var found = new List<ArtifactInfo>();
        foreach (var file in new DirectoryInfo(start).EnumerateFiles("*", new EnumerationOptions
        {
            RecurseSubdirectories = true,
            IgnoreInaccessible = true,
            AttributesToSkip = 0,
            ReturnSpecialDirectories = false,
        }))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = Path.GetRelativePath(root, file.FullName).Replace(Path.DirectorySeparatorChar, '/');
            if (IsStaging(key) || !key.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            long length;
            DateTime written;
            try
            {
                length = file.Length;
                written = file.LastWriteTimeUtc;
            }
            catch (FileNotFoundException)
            {
                // Deleted between the directory read and its stat (a concurrent delete of the same job): a listing
                // taken while objects are deleted may leave them out, as S3's does.
                continue;
            }

            found.Add(new ArtifactInfo(key, length, new DateTimeOffset(written, TimeSpan.Zero)));
        }

        found.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return found;
    }

    private static bool IsStaging(string key) =>
        key.StartsWith(StagingFolderName + "/", StringComparison.Ordinal) || key == StagingFolderName;

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a leftover staging file is invisible to readers and overwritten by nothing.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }
    }
}
