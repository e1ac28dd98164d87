using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Storage;
using RenderFarm.Storage.Models;

namespace RenderFarm.Worker.Models;

/// <summary>
/// Models fetched from the model store (<see cref="ModelRepository"/>) into <see cref="WorkerOptions.ModelsRoot"/>,
/// so a worker sent an item for a model it lacks gets it without anyone copying it by hand.
/// </summary>
/// <remarks>
/// <para>A fetch downloads into a hidden staging folder under the models root, verifies every file's SHA-256 against
/// the manifest, writes a marker (<see cref="MarkerFileName"/>), then renames the folder into place: a model folder
/// is either absent or complete. A lock file per model makes slots and processes sharing the root fetch it once; the
/// others wait and find it in place.</para>
/// <para>Fetched models (those with the marker) count against <see cref="WorkerOptions.ModelCacheSize"/>; the least
/// recently used are removed to make room. The marker's modification time is the last use, renewed whenever the
/// catalog resolves the model. Never removed: folders without the marker (put there by an operator, or the generated
/// tiny model), models loaded in a slot of this process, and models resolved here within <see cref="InUseGrace"/>
/// (opened, not yet reported loaded). Models loaded by another process sharing the root are not visible here: give
/// each worker process its own models root, or a limit that holds what they all load.</para>
/// </remarks>
public sealed partial class ModelCache
{
    /// <summary>The marker in a fetched model's folder; its presence makes the folder the cache's to evict.</summary>
    public const string MarkerFileName = ".renderfarm-fetched.json";

    /// <summary>Hidden folder under the models root for downloads in progress and lock files.</summary>
    public const string StagingFolderName = ".fetching";

    /// <summary>How long after being resolved a model counts as in use even if no slot reports it loaded yet.</summary>
    public static readonly TimeSpan InUseGrace = TimeSpan.FromMinutes(2);

    private static readonly TimeSpan LockPollInterval = TimeSpan.FromMilliseconds(100);
    private static readonly JsonSerializerOptions MarkerJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly ModelRepository _repository;
    private readonly IOptions<WorkerOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ModelCache> _logger;
    private readonly Func<IEnumerable<string>> _loadedModels;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _fetchGates = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _resolved = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _evictGate = new(1, 1);

    /// <param name="store">The artifact store holding <c>models/</c>.</param>
    /// <param name="options">The models root and the cache size.</param>
    /// <param name="time">Clock for last-use times.</param>
    /// <param name="logger">Fetches and evictions.</param>
    /// <param name="loadedModels">Models loaded in this process's slots now; they are never evicted.</param>
    public ModelCache(
        IArtifactStore store,
        IOptions<WorkerOptions> options,
        TimeProvider time,
        ILogger<ModelCache> logger,
        Func<IEnumerable<string>>? loadedModels = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        _repository = new ModelRepository(store, time);
        _options = options;
        _time = time;
        _logger = logger;
        _loadedModels = loadedModels ?? (() => []);
    }

    private string Root => _options.Value.ModelsRoot;

    private string Staging => Path.Combine(Root, StagingFolderName);

    /// <summary>Whether <paramref name="name"/>'s folder was fetched by the cache (and may be evicted by it).</summary>
    public bool IsFetched(string name) => File.Exists(Path.Combine(Root, name, MarkerFileName));

    /// <summary>
    /// Notes that <paramref name="name"/> was just handed out for rendering: renews a fetched model's last use and keeps
    /// it from eviction while the renderer opens it.
    /// </summary>
    public void MarkUsed(string name)
    {
        var now = _time.GetUtcNow();
        _resolved[name] = now;
        var marker = Path.Combine(Root, name, MarkerFileName);
        try
        {
            if (File.Exists(marker))
            {
                File.SetLastWriteTimeUtc(marker, now.UtcDateTime);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Evicted by another process a moment ago: the caller's open fails and the item is retried.
        }
    }

    /// <summary>
    /// Fetches <paramref name="name"/> from the model store into the models root (or finds it there, fetched meanwhile
    /// by another slot or process) and returns its folder.
    /// </summary>
    /// <exception cref="ModelNotFoundException">The store has no such model, or it is larger than the whole cache.</exception>
    /// <exception cref="ModelIntegrityException">A file in the store differs from the manifest; nothing is left on disk.</exception>
    /// <exception cref="ModelCacheFullException">Room cannot be made: the cached models are in use, or the disk is full.</exception>
    public async Task<string> FetchAsync(string name, CancellationToken cancellationToken)
    {
        var directory = Path.Combine(Root, name);
        if (!ModelNames.IsValid(name))
        {
            throw new ModelNotFoundException(
                $"Model '{name}' is not installed on this worker (looked in '{directory}'), and it cannot be fetched: a model store name is {ModelNames.Rule}.");
        }

        var gate = _fetchGates.GetOrAdd(name, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            Directory.CreateDirectory(Staging);
            using var fileLock = await FileLock.AcquireAsync(Path.Combine(Staging, name + ".fetch.lock"), cancellationToken);
            if (Directory.Exists(directory))
            {
                // Fetched by another process while this one waited for the lock.
                MarkUsed(name);
                return directory;
            }

            var manifest = await _repository.TryGetManifestAsync(name, cancellationToken)
                ?? throw new ModelNotFoundException(
                    $"Model '{name}' is not installed on this worker (looked in '{directory}') and is not in the model store (no {ModelRepository.ManifestKey(name)}).");
            var limit = _options.Value.ModelCacheBytes();
            if (manifest.TotalBytes > limit)
            {
                throw new ModelNotFoundException(
                    $"Model '{name}' ({ByteSize.Format(manifest.TotalBytes)}) is larger than this worker's model cache ({ByteSize.Format(limit)}); raise {WorkerOptions.SectionName}:{nameof(WorkerOptions.ModelCacheSize)} or install it by hand.");
            }

            await MakeRoomAsync(name, manifest.TotalBytes, limit, cancellationToken);
            return await DownloadAsync(manifest, directory, cancellationToken);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The fetched models under the root: name, bytes on disk and last use, least recently used first.</summary>
    public IReadOnlyList<CachedModel> Cached()
    {
        if (!Directory.Exists(Root))
        {
            return [];
        }

        var cached = new List<CachedModel>();
        foreach (var folder in Directory.EnumerateDirectories(Root))
        {
            var name = Path.GetFileName(folder);
            var marker = Path.Combine(folder, MarkerFileName);
            if (name.StartsWith('.') || !File.Exists(marker))
            {
                continue;
            }

            try
            {
                var bytes = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
                cached.Add(new CachedModel(name, bytes, new DateTimeOffset(File.GetLastWriteTimeUtc(marker), TimeSpan.Zero)));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Being evicted by another process: it no longer counts.
            }
        }

        return [.. cached.OrderBy(c => c.LastUsed).ThenBy(c => c.Name, StringComparer.Ordinal)];
    }

    private async Task<string> DownloadAsync(ModelManifest manifest, string directory, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var staging = Path.Combine(Staging, $"{manifest.Name}-{Guid.NewGuid():N}");
        LogFetching(manifest.Name, manifest.FileCount, manifest.TotalBytes);
        try
        {
            await _repository.DownloadAsync(manifest, staging, progress: null, cancellationToken);
            var marker = new FetchedMarker(manifest.Name, manifest.CreatedAt, manifest.TotalBytes, manifest.FileCount, _time.GetUtcNow());
            await File.WriteAllBytesAsync(Path.Combine(staging, MarkerFileName), JsonSerializer.SerializeToUtf8Bytes(marker, MarkerJson), cancellationToken);

            // Same file system, so the rename is atomic: readers see no folder or the whole verified one.
            Directory.Move(staging, directory);
        }
        catch (Exception ex)
        {
            DeleteQuietly(staging);
            if (ex is ModelIntegrityException integrity)
            {
                LogIntegrityFailure(integrity, manifest.Name);
            }

            throw;
        }

        MarkUsed(manifest.Name);
        LogFetched(manifest.Name, manifest.TotalBytes, Stopwatch.GetElapsedTime(started).TotalSeconds);
        return directory;
    }

    /// <summary>Evicts least recently used fetched models until <paramref name="incomingBytes"/> more fit under the limit and on the disk.</summary>
    private async Task MakeRoomAsync(string incoming, long incomingBytes, long limit, CancellationToken cancellationToken)
    {
        await _evictGate.WaitAsync(cancellationToken);
        try
        {
            using var fileLock = await FileLock.AcquireAsync(Path.Combine(Staging, ".evict.lock"), cancellationToken);
            var inUse = InUse();
            var cached = Cached();
            var total = cached.Sum(c => c.Bytes);
            foreach (var victim in cached.Where(c => c.Name != incoming && !inUse.Contains(c.Name)))
            {
                if (total + incomingBytes <= limit && FreeDiskBytes() >= incomingBytes)
                {
                    break;
                }

                if (Evict(victim))
                {
                    total -= victim.Bytes;
                }
            }

            if (total + incomingBytes > limit)
            {
                throw new ModelCacheFullException(
                    $"No room for model '{incoming}' ({ByteSize.Format(incomingBytes)}) in this worker's model cache ({ByteSize.Format(limit)}): "
                    + $"{ByteSize.Format(total)} of fetched models are in use ({string.Join(", ", cached.Where(c => inUse.Contains(c.Name)).Select(c => c.Name))}).");
            }

            var free = FreeDiskBytes();
            if (free < incomingBytes)
            {
                throw new ModelCacheFullException(
                    $"No room for model '{incoming}' ({ByteSize.Format(incomingBytes)}): only {ByteSize.Format(free)} free on the disk of '{Root}'.");
            }
        }
        finally
        {
            _evictGate.Release();
        }
    }

    private HashSet<string> InUse()
    {
        var since = _time.GetUtcNow() - InUseGrace;
        var inUse = new HashSet<string>(_loadedModels(), StringComparer.Ordinal);
        foreach (var (name, at) in _resolved)
        {
            if (at >= since)
            {
                inUse.Add(name);
            }
        }

        return inUse;
    }

    private bool Evict(CachedModel victim)
    {
        var folder = Path.Combine(Root, victim.Name);
        var doomed = Path.Combine(Staging, $"{victim.Name}-evicted-{Guid.NewGuid():N}");
        try
        {
            // Renamed out of sight first: the catalog and heartbeats never see a half-deleted model.
            Directory.Move(folder, doomed);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        DeleteQuietly(doomed);
        LogEvicted(victim.Name, victim.Bytes, victim.LastUsed);
        return true;
    }

    private long FreeDiskBytes()
    {
        try
        {
            return new DriveInfo(Path.GetFullPath(Root)).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // Unknown: the download itself will fail if the disk fills.
            return long.MaxValue;
        }
    }

    private static void DeleteQuietly(string folder)
    {
        try
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left in the hidden staging folder, where nothing reads it; a later cleanup may remove it.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetching model {Model} from the model store: {Files} files, {Bytes} bytes")]
    private partial void LogFetching(string model, int files, long bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetched and verified model {Model} ({Bytes} bytes) in {Seconds:0.0} s")]
    private partial void LogFetched(string model, long bytes, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Evicted model {Model} ({Bytes} bytes, last used {LastUsed:u}) to make room")]
    private partial void LogEvicted(string model, long bytes, DateTimeOffset lastUsed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {Model} in the store failed verification; the download was discarded")]
    private partial void LogIntegrityFailure(Exception exception, string model);

    private sealed record FetchedMarker(string Name, DateTimeOffset PushedAt, long TotalBytes, int FileCount, DateTimeOffset FetchedAt);

    /// <summary>
    /// An exclusive lock on a file, across processes: .NET takes <c>flock(LOCK_EX)</c> for <see cref="FileShare.None"/>
    /// on Unix (a share violation elsewhere). The file is never deleted, so two holders can never lock different files.
    /// </summary>
    private sealed class FileLock : IDisposable
    {
        private readonly FileStream _stream;

        private FileLock(FileStream stream) => _stream = stream;

        public static async Task<FileLock> AcquireAsync(string path, CancellationToken cancellationToken)
        {
            while (true)
            {
                try
                {
                    return new FileLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
                }
                catch (IOException) when (File.Exists(path))
                {
                    // Held by another process (a fetch of the same model): wait for it.
                    await Task.Delay(LockPollInterval, cancellationToken);
                }
            }
        }

        public void Dispose() => _stream.Dispose();
    }
}

/// <summary>A model the cache fetched.</summary>
/// <param name="Name">Its folder under the models root.</param>
/// <param name="Bytes">Its files' total size on disk.</param>
/// <param name="LastUsed">When a render last resolved it (or when it was fetched).</param>
public sealed record CachedModel(string Name, long Bytes, DateTimeOffset LastUsed);

/// <summary>
/// The model cache cannot make room for a model now: the fetched models it holds are in use, or the disk is full.
/// Retryable: room frees up as slots move on, and another worker may have it.
/// </summary>
public sealed class ModelCacheFullException : IOException
{
    public ModelCacheFullException()
    {
    }

    public ModelCacheFullException(string message)
        : base(message)
    {
    }

    public ModelCacheFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
