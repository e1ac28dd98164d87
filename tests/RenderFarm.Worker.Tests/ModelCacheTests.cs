using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RenderFarm.Storage;
using RenderFarm.Storage.Models;
using RenderFarm.Worker.Models;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// The worker's model cache on a real local-folder store: fetch and verify, least-recently-used eviction within the
/// size limit, what is never evicted, corrupted store copies, and concurrent fetches of one model.
/// </summary>
public sealed class ModelCacheTests : IDisposable
{
    private const int ModelBytes = 40_000;

    private readonly TempFolder _temp = new();
    private readonly CountingStore _store;
    private readonly ManualClock _clock = new();

    public ModelCacheTests()
    {
        _store = new CountingStore(new LocalFolderArtifactStore(Path.Combine(_temp.Path, "store")));
        ModelsRoot = Path.Combine(_temp.Path, "models");
    }

    private string ModelsRoot { get; }

    private static CancellationToken Ct => CancellationToken.None;

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task A_model_only_in_the_store_is_fetched_verified_and_kept_for_the_next_item()
    {
        var source = await PushAsync("remote", ModelBytes);
        var catalog = Catalog(Cache());

        var folder = await catalog.ResolveAsync("remote", Ct);

        folder.ShouldBe(Path.Combine(ModelsRoot, "remote"));
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            File.ReadAllBytes(Path.Combine(folder, Path.GetRelativePath(source, file))).ShouldBe(File.ReadAllBytes(file));
        }

        File.Exists(Path.Combine(folder, ModelCache.MarkerFileName)).ShouldBeTrue();
        NoDownloadsLeft();

        // The second item finds it on disk: nothing more is read from the store.
        var reads = _store.Reads;
        (await catalog.ResolveAsync("remote", Ct)).ShouldBe(folder);
        _store.Reads.ShouldBe(reads);
    }

    [Fact]
    public async Task Beyond_the_limit_the_least_recently_used_fetched_model_is_evicted_and_hand_installed_ones_never()
    {
        await PushAsync("a", ModelBytes);
        await PushAsync("b", ModelBytes);
        await PushAsync("c", ModelBytes);
        var manual = Path.Combine(ModelsRoot, "by-hand");
        Directory.CreateDirectory(manual);
        File.WriteAllBytes(Path.Combine(manual, "weights.bin"), new byte[ModelBytes * 5]);
        var catalog = Catalog(Cache(limitBytes: (long)(ModelBytes * 2.5)));

        await catalog.ResolveAsync("a", Ct);
        _clock.Advance(TimeSpan.FromMinutes(10));
        await catalog.ResolveAsync("b", Ct);
        _clock.Advance(TimeSpan.FromMinutes(10));
        await catalog.ResolveAsync("a", Ct);
        _clock.Advance(TimeSpan.FromMinutes(10));
        await catalog.ResolveAsync("c", Ct);

        Directory.Exists(Path.Combine(ModelsRoot, "b")).ShouldBeFalse("b was the least recently used");
        Directory.Exists(Path.Combine(ModelsRoot, "a")).ShouldBeTrue("a was used after b");
        Directory.Exists(Path.Combine(ModelsRoot, "c")).ShouldBeTrue();
        File.Exists(Path.Combine(manual, "weights.bin")).ShouldBeTrue("a folder the cache did not fetch is never evicted");
        NoDownloadsLeft();

        // Fetched again on demand after its eviction.
        _clock.Advance(TimeSpan.FromMinutes(10));
        (await catalog.ResolveAsync("b", Ct)).ShouldBe(Path.Combine(ModelsRoot, "b"));
        Directory.Exists(Path.Combine(ModelsRoot, "a")).ShouldBeFalse("a is now the least recently used");
    }

    [Fact]
    public async Task A_model_loaded_in_a_slot_is_not_evicted_even_when_least_recently_used()
    {
        await PushAsync("a", ModelBytes);
        await PushAsync("b", ModelBytes);
        await PushAsync("c", ModelBytes);
        var catalog = Catalog(Cache(limitBytes: (long)(ModelBytes * 2.5), loaded: ["a"]));

        await catalog.ResolveAsync("a", Ct);
        _clock.Advance(TimeSpan.FromMinutes(10));
        await catalog.ResolveAsync("b", Ct);
        _clock.Advance(TimeSpan.FromMinutes(10));
        await catalog.ResolveAsync("c", Ct);

        Directory.Exists(Path.Combine(ModelsRoot, "a")).ShouldBeTrue("a is loaded");
        Directory.Exists(Path.Combine(ModelsRoot, "b")).ShouldBeFalse();
    }

    [Fact]
    public async Task When_every_cached_model_is_in_use_the_fetch_fails_as_retryable_without_downloading()
    {
        await PushAsync("a", ModelBytes);
        await PushAsync("b", ModelBytes);
        var catalog = Catalog(Cache(limitBytes: (long)(ModelBytes * 1.5), loaded: ["a"]));
        await catalog.ResolveAsync("a", Ct);
        _clock.Advance(TimeSpan.FromMinutes(10));

        var error = await Should.ThrowAsync<ModelCacheFullException>(() => catalog.ResolveAsync("b", Ct));

        error.Message.ShouldContain("in use (a)");
        Directory.Exists(Path.Combine(ModelsRoot, "b")).ShouldBeFalse();
        Directory.Exists(Path.Combine(ModelsRoot, "a")).ShouldBeTrue();
        RenderFarm.Worker.Consumers.RenderWorkUnitConsumer.Classify(error).Retryable.ShouldBeTrue();
    }

    [Fact]
    public async Task A_model_larger_than_the_whole_cache_is_not_fetched()
    {
        await PushAsync("huge", ModelBytes);
        var catalog = Catalog(Cache(limitBytes: ModelBytes / 2));

        var error = await Should.ThrowAsync<ModelNotFoundException>(() => catalog.ResolveAsync("huge", Ct));

        error.Message.ShouldContain(nameof(WorkerOptions.ModelCacheSize));
        Directory.Exists(Path.Combine(ModelsRoot, "huge")).ShouldBeFalse();
    }

    [Fact]
    public async Task A_file_corrupted_in_the_store_fails_the_fetch_as_retryable_and_leaves_no_partial_folder()
    {
        await PushAsync("damaged", ModelBytes);
        var weights = ArtifactKeys.ModelFile("damaged", "unet/model.onnx");
        var bytes = new byte[ModelBytes - 100];
        await _store.PutAsync(weights, new MemoryStream(bytes), "application/octet-stream", Ct);
        var catalog = Catalog(Cache());

        var error = await Should.ThrowAsync<ModelIntegrityException>(() => catalog.ResolveAsync("damaged", Ct));

        error.FilePath.ShouldBe("unet/model.onnx");
        error.Message.ShouldContain("SHA-256");
        Directory.Exists(Path.Combine(ModelsRoot, "damaged")).ShouldBeFalse();
        NoDownloadsLeft();
        RenderFarm.Worker.Consumers.RenderWorkUnitConsumer.Classify(error).Retryable
            .ShouldBeTrue("the store may be repaired by a new push, so the coordinator may try again");
    }

    [Fact]
    public async Task A_model_neither_on_disk_nor_in_the_store_is_not_found()
    {
        var catalog = Catalog(Cache());

        var error = await Should.ThrowAsync<ModelNotFoundException>(() => catalog.ResolveAsync("nowhere", Ct));

        error.Message.ShouldContain("is not installed on this worker");
        error.Message.ShouldContain("models/nowhere/manifest.json");
    }

    [Fact]
    public async Task Concurrent_fetches_of_one_model_by_two_slots_and_another_process_download_it_once()
    {
        var source = await PushAsync("shared", 3 * 1024 * 1024);
        var manifest = await new ModelRepository(_store).GetManifestAsync("shared", Ct);
        // Two caches over one root stand for two worker processes: they share only the folder and its lock files.
        var first = Catalog(Cache());
        var second = Catalog(Cache());

        var folders = await Task.WhenAll(
            Task.Run(() => first.ResolveAsync("shared", Ct)),
            Task.Run(() => first.ResolveAsync("shared", Ct)),
            Task.Run(() => second.ResolveAsync("shared", Ct)),
            Task.Run(() => second.ResolveAsync("shared", Ct)));

        folders.ShouldAllBe(f => f == Path.Combine(ModelsRoot, "shared"));
        foreach (var file in manifest.Files)
        {
            _store.ReadsOf(ArtifactKeys.ModelFile("shared", file.Path)).ShouldBe(1, file.Path);
            File.ReadAllBytes(Path.Combine(folders[0], file.Path)).ShouldBe(File.ReadAllBytes(Path.Combine(source, file.Path)));
        }

        NoDownloadsLeft();
    }

    private ModelCache Cache(long limitBytes = 1L << 30, IReadOnlyList<string>? loaded = null) => new(
        _store,
        Options(limitBytes),
        _clock,
        NullLogger<ModelCache>.Instance,
        () => loaded ?? []);

    private ModelCatalog Catalog(ModelCache cache) => new(Options(1L << 30), cache);

    private IOptions<WorkerOptions> Options(long limitBytes) =>
        Microsoft.Extensions.Options.Options.Create(new WorkerOptions
        {
            ModelsRoot = ModelsRoot,
            ModelCacheSize = limitBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    /// <summary>A model-shaped folder of about <paramref name="bytes"/> random bytes, pushed to the store.</summary>
    private async Task<string> PushAsync(string name, int bytes)
    {
        var folder = Path.Combine(_temp.Path, "sources", name);
        Directory.CreateDirectory(Path.Combine(folder, "unet"));
        File.WriteAllText(Path.Combine(folder, "model_index.json"), """{"_class_name": "OnnxStableDiffusionPipeline"}""");
        var weights = new byte[bytes - 100];
        new Random(name.GetHashCode(StringComparison.Ordinal)).NextBytes(weights);
        File.WriteAllBytes(Path.Combine(folder, "unet", "model.onnx"), weights);
        await new ModelRepository(_store).PushAsync(name, folder, replace: false, progress: null, Ct);
        return folder;
    }

    /// <summary>Only lock files may remain in the staging folder: no download or eviction leftovers.</summary>
    private void NoDownloadsLeft()
    {
        var staging = Path.Combine(ModelsRoot, ModelCache.StagingFolderName);
        if (Directory.Exists(staging))
        {
            Directory.EnumerateDirectories(staging).ShouldBeEmpty();
        }
    }

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    /// <summary>The real local-folder store, counting the objects read through it.</summary>
    private sealed class CountingStore(IArtifactStore inner) : IArtifactStore
    {
        private readonly ConcurrentDictionary<string, int> _reads = new(StringComparer.Ordinal);

        public int Reads => _reads.Values.Sum();

        public int ReadsOf(string key) => _reads.GetValueOrDefault(key);

        public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
        {
            _reads.AddOrUpdate(key, 1, (_, n) => n + 1);
            return inner.OpenReadAsync(key, cancellationToken);
        }

        public Task PutAsync(string key, Stream content, string contentType, CancellationToken cancellationToken) =>
            inner.PutAsync(key, content, contentType, cancellationToken);

        public Task<bool> ExistsAsync(string key, CancellationToken cancellationToken) => inner.ExistsAsync(key, cancellationToken);

        public Task<Uri?> GetDownloadUrlAsync(string key, TimeSpan lifetime, CancellationToken cancellationToken) =>
            inner.GetDownloadUrlAsync(key, lifetime, cancellationToken);

        public IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, CancellationToken cancellationToken) => inner.ListAsync(prefix, cancellationToken);

        public Task DeleteAsync(string key, CancellationToken cancellationToken) => inner.DeleteAsync(key, cancellationToken);
    }
}
