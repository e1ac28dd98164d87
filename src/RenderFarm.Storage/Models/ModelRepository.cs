using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace RenderFarm.Storage.Models;

/// <summary>
/// Model folders in the artifact store: every file under <c>models/{name}/{path}</c> and, written last, a
/// <see cref="ModelManifest"/> at <c>models/{name}/manifest.json</c> that lists them with sizes and SHA-256 hashes.
/// A model exists for readers exactly when its manifest does, so a push that fails half-way is never listed.
/// </summary>
/// <remarks>
/// Files are streamed both ways and hashed as they pass: nothing holds a whole file in memory, whatever its size.
/// Hidden files and folders (names starting with '.') are not pushed, and a model folder may not contain a top-level
/// <c>manifest.json</c> of its own.
/// </remarks>
public sealed class ModelRepository
{
    /// <summary>The manifest's name inside a model's folder in the store.</summary>
    public const string ManifestFileName = "manifest.json";

    private const string ModelsPrefix = "models/";
    private const string OctetStream = "application/octet-stream";
    private const int CopyBufferSize = 1024 * 1024;

    private readonly IArtifactStore store;
    private readonly TimeProvider time;

    public ModelRepository(IArtifactStore store, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        this.store = store;
        time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The key of <paramref name="name"/>'s manifest: <c>models/{name}/manifest.json</c>.</summary>
    public static string ManifestKey(string name)
    {
        ModelNames.Validate(name);
        return ArtifactKeys.ModelFile(name, ManifestFileName);
    }

    /// <summary>
    /// Uploads every file under <paramref name="directory"/> as model <paramref name="name"/>, then its manifest.
    /// </summary>
    /// <param name="name">The model's name (<see cref="ModelNames.Rule"/>).</param>
    /// <param name="directory">The model folder, e.g. a diffusers ONNX export.</param>
    /// <param name="replace">
    /// Replace a model of that name already in the store. Its manifest is removed first (the model is unlisted while the
    /// new files go up), and files the new manifest does not list are removed after it is written.
    /// </param>
    /// <param name="progress">Told after each file.</param>
    /// <param name="cancellationToken">Stops the push; the model stays unlisted until a later push completes.</param>
    /// <returns>The manifest written.</returns>
    /// <exception cref="ArgumentException">The name breaks the rule, or the folder is empty or holds a file the store cannot name.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="ModelAlreadyInStoreException">The model exists and <paramref name="replace"/> is false.</exception>
    /// <exception cref="IOException">A file changed size while it was being uploaded.</exception>
    public async Task<ModelManifest> PushAsync(
        string name,
        string directory,
        bool replace,
        IProgress<ModelFileTransferred>? progress,
        CancellationToken cancellationToken)
    {
        ModelNames.Validate(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var root = Path.GetFullPath(directory);
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"The model folder '{root}' does not exist.");
        }

        var paths = LocalFiles(root);
        var manifestKey = ManifestKey(name);
        if (await store.ExistsAsync(manifestKey, cancellationToken).ConfigureAwait(false))
        {
            if (!replace)
            {
                throw new ModelAlreadyInStoreException(
                    $"Model '{name}' is already in the store; push with replace (--replace) to overwrite it, or choose another name.");
            }

            // Unlisted before any file changes: a worker must never fetch the old manifest with new files.
            await store.DeleteAsync(manifestKey, cancellationToken).ConfigureAwait(false);
        }

        var entries = new List<ModelFileEntry>(paths.Count);
        foreach (var path in paths)
        {
            var entry = await UploadFileAsync(name, root, path, cancellationToken).ConfigureAwait(false);
            entries.Add(entry);
            progress?.Report(new ModelFileTransferred(name, entry, entries.Count, paths.Count));
        }

        var manifest = new ModelManifest(
            ModelManifest.CurrentFormat,
            name,
            time.GetUtcNow(),
            entries.Sum(e => e.Size),
            entries.Count,
            entries);
        var json = JsonSerializer.SerializeToUtf8Bytes(manifest, ModelManifestJson.Default.ModelManifest);
        using (var content = new MemoryStream(json, writable: false))
        {
            await store.PutAsync(manifestKey, content, "application/json", cancellationToken).ConfigureAwait(false);
        }

        if (replace)
        {
            await DeleteUnlistedAsync(manifest, cancellationToken).ConfigureAwait(false);
        }

        return manifest;
    }

    /// <summary>Every model whose manifest is in the store, by name (ordinal).</summary>
    /// <exception cref="ModelIntegrityException">A manifest cannot be read.</exception>
    public async Task<IReadOnlyList<ModelManifest>> ListAsync(CancellationToken cancellationToken)
    {
        var names = new List<string>();
        await foreach (var info in store.ListAsync(ModelsPrefix, cancellationToken).ConfigureAwait(false))
        {
            // models/{name}/manifest.json exactly; a model's own files never sit at that depth with that name,
            // because push refuses a top-level manifest.json in the folder.
            var rest = info.Key.AsSpan(ModelsPrefix.Length);
            var slash = rest.IndexOf('/');
            if (slash > 0 && rest[(slash + 1)..].SequenceEqual(ManifestFileName) && ModelNames.IsValid(rest[..slash].ToString()))
            {
                names.Add(rest[..slash].ToString());
            }
        }

        var manifests = new List<ModelManifest>(names.Count);
        foreach (var name in names.Order(StringComparer.Ordinal))
        {
            // A manifest removed between the listing and the read (a replace in progress) is simply not listed.
            if (await TryGetManifestAsync(name, cancellationToken).ConfigureAwait(false) is { } manifest)
            {
                manifests.Add(manifest);
            }
        }

        return manifests;
    }

    /// <summary>The manifest of <paramref name="name"/>, or null when the store has none.</summary>
    /// <exception cref="ArgumentException">The name breaks the rule.</exception>
    /// <exception cref="ModelIntegrityException">The manifest cannot be read or contradicts itself.</exception>
    public async Task<ModelManifest?> TryGetManifestAsync(string name, CancellationToken cancellationToken)
    {
        var key = ManifestKey(name);
        byte[] json;
        try
        {
            var stream = await store.OpenReadAsync(key, cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                using var buffer = new MemoryStream();
                await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
                json = buffer.ToArray();
            }
        }
        catch (ArtifactNotFoundException)
        {
            return null;
        }

        return Parse(name, key, json);
    }

    /// <summary>The manifest of <paramref name="name"/>.</summary>
    /// <exception cref="ModelNotInStoreException">The store has no manifest for it.</exception>
    /// <exception cref="ModelIntegrityException">The manifest cannot be read or contradicts itself.</exception>
    public async Task<ModelManifest> GetManifestAsync(string name, CancellationToken cancellationToken) =>
        await TryGetManifestAsync(name, cancellationToken).ConfigureAwait(false) ?? throw ModelNotInStoreException.For(name);

    /// <summary>
    /// Downloads every file of <paramref name="manifest"/> into <paramref name="directory"/> (created when missing),
    /// verifying each one's size and SHA-256.
    /// </summary>
    /// <exception cref="ModelIntegrityException">A file differs from the manifest; it is deleted, earlier files are left for the caller.</exception>
    /// <exception cref="ArtifactNotFoundException">A listed file is missing from the store.</exception>
    public async Task DownloadAsync(
        ModelManifest manifest,
        string directory,
        IProgress<ModelFileTransferred>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        Directory.CreateDirectory(root);
        var done = 0;
        foreach (var file in manifest.Files)
        {
            // Manifests are validated when read; the resolved path is checked again because it is what gets written.
            var destination = Path.GetFullPath(Path.Combine(root, file.Path.Replace('/', Path.DirectorySeparatorChar)));
            if (!destination.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new ModelIntegrityException($"Model '{manifest.Name}' lists '{file.Path}', which resolves outside the download folder.")
                {
                    Name = manifest.Name,
                    FilePath = file.Path,
                };
            }

            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            await DownloadFileAsync(manifest.Name, file, destination, cancellationToken).ConfigureAwait(false);
            progress?.Report(new ModelFileTransferred(manifest.Name, file, ++done, manifest.FileCount));
        }
    }

    /// <summary>
    /// Downloads one file of model <paramref name="name"/> to <paramref name="destinationPath"/> (replacing it),
    /// hashing while it writes; a file whose size or SHA-256 differs from <paramref name="file"/> is deleted.
    /// </summary>
    /// <exception cref="ModelIntegrityException">The bytes differ from the manifest's entry.</exception>
    /// <exception cref="ArtifactNotFoundException">The file is missing from the store.</exception>
    public async Task DownloadFileAsync(string name, ModelFileEntry file, string destinationPath, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        var key = ArtifactKeys.ModelFile(name, file.Path);
        try
        {
            var (size, sha256) = await CopyAndHashAsync(key, destinationPath, file.Size, cancellationToken).ConfigureAwait(false);
            if (size != file.Size)
            {
                throw new ModelIntegrityException(
                    $"Model '{name}': '{file.Path}' in the store has {(size > file.Size ? "more than" : "only")} "
                    + string.Create(CultureInfo.InvariantCulture, $"{size} bytes, the manifest says {file.Size}; push the model again to repair the store."))
                {
                    Name = name,
                    FilePath = file.Path,
                };
            }

            if (!string.Equals(sha256, file.Sha256, StringComparison.Ordinal))
            {
                throw new ModelIntegrityException(
                    $"Model '{name}': '{file.Path}' in the store has SHA-256 {sha256}, the manifest says {file.Sha256}; "
                    + "the file was changed or damaged after the push. Push the model again to repair the store.")
                {
                    Name = name,
                    FilePath = file.Path,
                };
            }
        }
        catch
        {
            TryDelete(destinationPath);
            throw;
        }
    }

    private async Task<ModelFileEntry> UploadFileAsync(string name, string root, string path, CancellationToken cancellationToken)
    {
        var key = ArtifactKeys.ModelFile(name, path);
        var file = new FileStream(Path.Combine(root, path), new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Read,
            Share = FileShare.Read,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            BufferSize = CopyBufferSize,
        });
        var hashing = new HashingReadStream(file);
        await using (hashing.ConfigureAwait(false))
        {
            var size = file.Length;
            await store.PutAsync(key, hashing, OctetStream, cancellationToken).ConfigureAwait(false);
            if (hashing.BytesRead != size || file.Length != size)
            {
                throw new IOException(
                    $"'{path}' changed while it was being pushed ({size} bytes when opened, {hashing.BytesRead} read); push again once nothing writes to the folder.");
            }

            return new ModelFileEntry(path, size, hashing.FinishHash());
        }
    }

    private async Task<(long Size, string Sha256)> CopyAndHashAsync(string key, string destinationPath, long expectedSize, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var source = await store.OpenReadAsync(key, cancellationToken).ConfigureAwait(false);
        await using (source.ConfigureAwait(false))
        {
            var target = new FileStream(destinationPath, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                Share = FileShare.None,
                Options = FileOptions.Asynchronous,
                BufferSize = 0,
            });
            await using (target.ConfigureAwait(false))
            {
                var buffer = new byte[CopyBufferSize];
                long size = 0;
                int read;
                while ((read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    size += read;
                    if (size > expectedSize)
                    {
                        // Longer than listed: stop now rather than fill the disk with a file that is wrong anyway.
                        return (size, string.Empty);
                    }

                    hash.AppendData(buffer, 0, read);
                    await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }

                await target.FlushAsync(cancellationToken).ConfigureAwait(false);
                return (size, Convert.ToHexStringLower(hash.GetHashAndReset()));
            }
        }
    }

    private async Task DeleteUnlistedAsync(ModelManifest manifest, CancellationToken cancellationToken)
    {
        var listed = manifest.Files.Select(f => ArtifactKeys.ModelFile(manifest.Name, f.Path))
            .Append(ManifestKey(manifest.Name))
            .ToHashSet(StringComparer.Ordinal);
        var stale = new List<string>();
        await foreach (var info in store.ListAsync(ArtifactKeys.ModelPrefix(manifest.Name), cancellationToken).ConfigureAwait(false))
        {
            if (!listed.Contains(info.Key))
            {
                stale.Add(info.Key);
            }
        }

        foreach (var key in stale)
        {
            await store.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The files to push, relative and '/'-separated, in ordinal order; refuses what the store cannot hold.</summary>
    private static List<string> LocalFiles(string root)
    {
        var paths = ModelFolderFiles(root);
        if (paths.Count == 0)
        {
            throw new ArgumentException($"The model folder '{root}' holds no files to push.", "directory");
        }

        if (paths.Contains(ManifestFileName, StringComparer.Ordinal))
        {
            throw new ArgumentException(
                $"The model folder '{root}' has a top-level '{ManifestFileName}': that name is reserved for the store's manifest.", "directory");
        }

        foreach (var path in paths)
        {
            try
            {
                _ = ArtifactKeys.ModelFile("x", path);
            }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"'{path}' in '{root}' cannot be stored: {ex.Message}", "directory", ex);
            }
        }

        return paths;
    }

    /// <summary>
    /// A model folder's files, relative and '/'-separated, in ordinal order: what a push uploads and what
    /// <see cref="ModelContentHash.OfFolder"/> hashes, so both see the same model.
    /// </summary>
    internal static List<string> ModelFolderFiles(string root)
    {
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            // Hidden entries (dot-names on Unix) are caches, VCS folders and the worker's own bookkeeping, not model.
            AttributesToSkip = FileAttributes.Hidden | FileAttributes.System,
            IgnoreInaccessible = false,
        };
        return Directory.EnumerateFiles(root, "*", options)
            .Select(f => Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(p => !p.Split('/').Any(IsHidden))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    private static bool IsHidden(string segment) => segment.StartsWith('.');

    private static ModelManifest Parse(string name, string key, byte[] json)
    {
        ModelManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(json, ModelManifestJson.Default.ModelManifest);
        }
        catch (JsonException ex)
        {
            throw Invalid(name, key, $"it is not valid JSON ({ex.Message})", ex);
        }

        if (manifest?.Files is null || manifest.Name is null)
        {
            throw Invalid(name, key, "it lacks the name or the file list");
        }

        if (manifest.Format != ModelManifest.CurrentFormat)
        {
            throw Invalid(name, key, string.Create(CultureInfo.InvariantCulture,
                $"its format is {manifest.Format}; this version reads format {ModelManifest.CurrentFormat} (upgrade RenderFarm)"));
        }

        if (!string.Equals(manifest.Name, name, StringComparison.Ordinal))
        {
            throw Invalid(name, key, $"it names model '{manifest.Name}'");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in manifest.Files)
        {
            if (file?.Path is null || file.Sha256 is null)
            {
                throw Invalid(name, key, "a file entry lacks its path or hash");
            }

            try
            {
                _ = ArtifactKeys.ModelFile(name, file.Path);
            }
            catch (ArgumentException ex)
            {
                throw Invalid(name, key, $"'{file.Path}' is not a valid relative path: {ex.Message}", ex);
            }

            if (file.Path == ManifestFileName || file.Path.Split('/').Any(IsHidden) || !seen.Add(file.Path))
            {
                throw Invalid(name, key, $"'{file.Path}' is reserved, hidden or listed twice");
            }

            if (file.Size < 0 || file.Sha256.Length != 64 || !file.Sha256.All(char.IsAsciiHexDigitLower))
            {
                throw Invalid(name, key, $"'{file.Path}' has a negative size or a SHA-256 that is not 64 lowercase hex digits");
            }
        }

        if (manifest.FileCount != manifest.Files.Count || manifest.TotalBytes != manifest.Files.Sum(f => f.Size))
        {
            throw Invalid(name, key, "its totals do not match its file list");
        }

        return manifest;
    }

    private static ModelIntegrityException Invalid(string name, string key, string why, Exception? inner = null) =>
        inner is null
            ? new ModelIntegrityException($"The manifest {key} cannot be used: {why}.") { Name = name }
            : new ModelIntegrityException($"The manifest {key} cannot be used: {why}.", inner) { Name = name };

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: the caller discards the whole download folder anyway.
        }
    }
}
