using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using RenderFarm.Client;
using RenderFarm.Storage.Datasets;

namespace RenderFarm.Cli.Datasets;

/// <summary>How <c>renderfarm export</c> lays a dataset out on disk.</summary>
internal static class DatasetLayouts
{
    /// <summary><c>DIR/{key}.png</c> with <c>{key}.json</c> (the manifest entry) and <c>{key}.txt</c> (the prompt) beside it, as img2dataset's files format.</summary>
    public const string Files = "files";

    /// <summary>Hugging Face ImageFolder: <c>DIR/images/{key}.png</c> and <c>DIR/metadata.jsonl</c> with <c>file_name</c> plus the manifest's columns.</summary>
    public const string ImageFolder = "imagefolder";

    /// <summary>
    /// WebDataset: the job's shards as the farm published them, <c>DIR/{shard:D6}.tar</c>, each sample's <c>{key}.png</c>,
    /// <c>{key}.json</c> and <c>{key}.txt</c>; only for jobs submitted with <c>output.format = webdataset</c>.
    /// </summary>
    public const string WebDataset = "webdataset";

    public static readonly string[] All = [Files, ImageFolder, WebDataset];
}

/// <summary>What an export did.</summary>
/// <param name="Items">Items the manifest lists.</param>
/// <param name="Images">Items with an image (succeeded), each now on disk unless it failed below.</param>
/// <param name="Downloaded">Images fetched this run.</param>
/// <param name="Replaced">Of those, how many replaced a file whose bytes did not match the manifest's SHA-256.</param>
/// <param name="Verified">Images already on disk whose SHA-256 matched: not fetched again.</param>
/// <param name="Unverified">Images with no SHA-256 in the manifest (from workers that report none): kept or fetched unchecked.</param>
/// <param name="Duplicates">Images the manifest marks as a copy of an earlier item's.</param>
/// <param name="Failures">Items whose image could not be fetched or did not match its hash, by index.</param>
internal sealed record ExportResult(
    long Items,
    long Images,
    long Downloaded,
    long Replaced,
    long Verified,
    long Unverified,
    long Duplicates,
    IReadOnlyList<(long Index, string Reason)> Failures);

/// <summary>
/// Exports a job as a dataset folder: both manifests, every image verified against its SHA-256, and the layout's
/// metadata. Resumable: an image already on disk with the manifest's hash is kept, a missing or damaged one is fetched
/// again, so a second run after an interruption fetches only what the first did not finish.
/// </summary>
/// <remarks>
/// The manifest is saved first and then read back from disk in a stream, so an export of a million items holds one
/// entry per download in flight, not the job. Files are written beside their final name and moved once whole.
/// </remarks>
internal sealed class DatasetExporter(RenderFarmClient client, Guid jobId, string folder, string layout, int parallel)
{
    public const string ManifestJsonl = "manifest.jsonl";
    public const string ManifestParquet = "manifest.parquet";
    public const string Metadata = "metadata.jsonl";
    public const string ImagesFolder = "images";

    // Sidecars and metadata carry every column, nulls included, with prompts unescaped: data files, never HTML.
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly ConcurrentQueue<(long Index, string Reason)> _failures = new();
    private long _downloaded;
    private long _replaced;
    private long _verified;
    private long _unverified;

    /// <summary>The dataset folder and the layout's subfolders (kept when there).</summary>
    public void CreateFolders()
    {
        Directory.CreateDirectory(folder);
        if (layout == DatasetLayouts.ImageFolder)
        {
            Directory.CreateDirectory(Path.Combine(folder, ImagesFolder));
        }
    }

    /// <summary>
    /// Saves <c>manifest.jsonl</c> and <c>manifest.parquet</c> and counts what they list.
    /// </summary>
    /// <exception cref="InvalidDataException">The manifest does not list every item of the job (a cut-off download).</exception>
    public async Task<(long Items, long Images, long Duplicates)> FetchManifestsAsync(long jobItems, CancellationToken cancellationToken)
    {
        await client.DownloadManifestAsync(jobId, ManifestFormat.Jsonl, Path.Combine(folder, ManifestJsonl), cancellationToken);
        await client.DownloadManifestAsync(jobId, ManifestFormat.Parquet, Path.Combine(folder, ManifestParquet), cancellationToken);

        long items = 0, images = 0, duplicates = 0;
        await foreach (var entry in ReadManifestAsync(cancellationToken))
        {
            items++;
            images += entry.HasImage ? 1 : 0;
            duplicates += entry is { HasImage: true, DuplicateOf: not null } ? 1 : 0;
        }

        // A stream cut between two lines still parses, so the count is what tells a whole manifest from part of one.
        if (items != jobItems)
        {
            throw new InvalidDataException($"the manifest lists {items} item(s) but job {jobId} has {jobItems}: the download was cut off. Run the export again.");
        }

        return (items, images, duplicates);
    }

    /// <summary>Fetches every image not already on disk with the right hash, <c>parallel</c> at a time; <paramref name="advance"/> once per image.</summary>
    public async Task DownloadImagesAsync(Action advance, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(advance);
        if (layout == DatasetLayouts.WebDataset)
        {
            await DownloadShardsAsync(advance, cancellationToken);
            return;
        }

        await Parallel.ForEachAsync(
            ReadManifestAsync(cancellationToken),
            new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = cancellationToken },
            async (entry, token) =>
            {
                if (!entry.HasImage)
                {
                    return;
                }

                await ExportImageAsync(entry, token);
                advance();
            });
    }

    /// <summary>Writes the layout's metadata for the images now on disk and returns the totals.</summary>
    public async Task<ExportResult> FinishAsync(long items, long images, long duplicates, CancellationToken cancellationToken)
    {
        var failed = _failures.ToDictionary(f => f.Index, f => f.Reason);
        if (layout == DatasetLayouts.ImageFolder)
        {
            await WriteImageFolderMetadataAsync(failed, cancellationToken);
        }

        return new ExportResult(items, images, _downloaded, _replaced, _verified, _unverified, duplicates,
            [.. failed.OrderBy(f => f.Key).Select(f => (f.Key, f.Value))]);
    }

    /// <summary>Where an image goes, relative to the dataset folder (the files and imagefolder layouts).</summary>
    public string RelativeImagePath(string key) => layout == DatasetLayouts.ImageFolder ? $"{ImagesFolder}/{key}.png" : $"{key}.png";

    private async Task ExportImageAsync(ManifestEntry entry, CancellationToken cancellationToken)
    {
        // Keys become file names: only the farm's own shape (digits) is taken, so no manifest can write outside the folder.
        if (entry.Key.Length == 0 || !entry.Key.All(char.IsAsciiDigit))
        {
            _failures.Enqueue((entry.Index, $"the manifest's key '{entry.Key}' is not a dataset key (digits only)"));
            return;
        }

        var path = Path.Combine(folder, RelativeImagePath(entry.Key));
        try
        {
            var replacing = false;
            if (File.Exists(path))
            {
                if (entry.Sha256 is null)
                {
                    Interlocked.Increment(ref _unverified);
                    await WriteSidecarsAsync(entry, cancellationToken);
                    return;
                }

                if (await HashFileAsync(path, cancellationToken) == entry.Sha256)
                {
                    Interlocked.Increment(ref _verified);
                    await WriteSidecarsAsync(entry, cancellationToken);
                    return;
                }

                replacing = true;
            }

            if (await DownloadVerifiedAsync(entry, path, cancellationToken) is { } mismatch)
            {
                _failures.Enqueue((entry.Index, mismatch));
                return;
            }

            Interlocked.Increment(ref _downloaded);
            if (replacing)
            {
                Interlocked.Increment(ref _replaced);
            }

            if (entry.Sha256 is null)
            {
                Interlocked.Increment(ref _unverified);
            }

            await WriteSidecarsAsync(entry, cancellationToken);
        }
        catch (RenderFarmApiException ex)
        {
            _failures.Enqueue((entry.Index, $"{ex.Title} ({ex.Status}){(ex.Detail is { } d ? ": " + d : "")}"));
        }
        catch (IOException ex)
        {
            _failures.Enqueue((entry.Index, ex.Message));
        }
    }

    /// <summary>Downloads to a partial file while hashing, and keeps it only when the hash matches; the reason when not.</summary>
    private async Task<string?> DownloadVerifiedAsync(ManifestEntry entry, string path, CancellationToken cancellationToken)
    {
        var partial = path + ".part";
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using (var source = await client.DownloadImageAsync(jobId, entry.Index, cancellationToken))
        await using (var target = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 81920, useAsync: true))
        {
            var buffer = new byte[81920];
            int read;
            while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
            {
                sha256.AppendData(buffer, 0, read);
                await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }

        var actual = Convert.ToHexStringLower(sha256.GetHashAndReset());
        if (entry.Sha256 is { } expected && actual != expected)
        {
            File.Delete(partial);
            return $"the downloaded image's SHA-256 {actual} is not the manifest's {expected}; nothing was kept";
        }

        File.Move(partial, path, overwrite: true);
        return null;
    }

    /// <summary>
    /// The WebDataset layout: every published shard whose tar on disk does not hold exactly the manifest's samples
    /// (each <c>{key}.png</c> with its SHA-256) is downloaded beside its name, checked the same way, and moved into
    /// place; a shard on disk that checks out is kept. The manifest is read in index order and shards are index
    /// ranges, so one shard's entries are held at a time per download.
    /// </summary>
    private async Task DownloadShardsAsync(Action advance, CancellationToken cancellationToken)
    {
        DatasetShardList list;
        try
        {
            list = await client.GetShardsAsync(jobId, cancellationToken);
        }
        catch (RenderFarmApiException ex) when (ex.Status == 404)
        {
            // The job exists (the export looked it up first): it has the files output.
            throw new InvalidDataException($"job {jobId} was not submitted with output.format webdataset, so it has no shards. Export it as files or imagefolder.", ex);
        }

        var published = list.Shards.ToDictionary(s => s.Shard);
        await Parallel.ForEachAsync(
            ReadShardsAsync(cancellationToken),
            new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = cancellationToken },
            async (shard, token) =>
            {
                var images = shard.Entries.Where(e => e.HasImage).ToList();
                var first = shard.Entries[0].Index;
                if (!published.TryGetValue(shard.Number, out var info))
                {
                    if (images.Count > 0)
                    {
                        _failures.Enqueue((first, $"shard {shard.Number} (items {first}..{shard.Entries[^1].Index}) is not published yet: it is once every item in it is final. Export again later."));
                    }

                    return;
                }

                try
                {
                    await ExportShardAsync(info, images, token);
                }
                catch (RenderFarmApiException ex)
                {
                    _failures.Enqueue((first, $"shard {shard.Number}: {ex.Title} ({ex.Status}){(ex.Detail is { } d ? ": " + d : "")}"));
                }
                catch (IOException ex)
                {
                    _failures.Enqueue((first, $"shard {shard.Number}: {ex.Message}"));
                }

                foreach (var _ in images)
                {
                    advance();
                }
            });
    }

    private async Task ExportShardAsync(DatasetShard info, List<ManifestEntry> images, CancellationToken cancellationToken)
    {
        // Names become file names: only the farm's own shape is taken, so no listing can write outside the folder.
        if (info.Name != $"{info.Shard:D6}.tar")
        {
            throw new IOException($"the farm names shard {info.Shard} '{info.Name}', not a shard file name");
        }

        var path = Path.Combine(folder, info.Name);
        var replacing = false;
        if (File.Exists(path))
        {
            if (await CheckShardAsync(path, images, cancellationToken) is null)
            {
                Interlocked.Add(ref _verified, images.Count);
                return;
            }

            replacing = true;
        }

        var partial = path + ".part";
        await using (var source = await client.DownloadShardAsync(jobId, info.Shard, cancellationToken))
        await using (var target = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 81920, useAsync: true))
        {
            await source.CopyToAsync(target, cancellationToken);
        }

        if (await CheckShardAsync(partial, images, cancellationToken) is { } problem)
        {
            File.Delete(partial);
            throw new IOException($"the downloaded shard does not match the manifest ({problem}); nothing was kept");
        }

        File.Move(partial, path, overwrite: true);
        Interlocked.Add(ref _downloaded, images.Count);
        Interlocked.Add(ref _unverified, images.Count(e => e.Sha256 is null));
        if (replacing)
        {
            Interlocked.Add(ref _replaced, images.Count);
        }
    }

    /// <summary>Null when the tar at <paramref name="path"/> holds each of <paramref name="images"/> once with its SHA-256 and no other image; else what is wrong.</summary>
    private static async Task<string?> CheckShardAsync(string path, List<ManifestEntry> images, CancellationToken cancellationToken)
    {
        var expected = images.ToDictionary(e => e.Key + ".png", e => e.Sha256, StringComparer.Ordinal);
        try
        {
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, useAsync: true);
            await foreach (var (name, png) in DatasetTar.ReadMembersAsync(file, n => n.EndsWith(".png", StringComparison.Ordinal), cancellationToken))
            {
                if (!expected.Remove(name, out var sha256))
                {
                    return $"{name} is not a sample of this shard in the manifest, or appears twice";
                }

                var actual = Convert.ToHexStringLower(SHA256.HashData(png));
                if (sha256 is not null && actual != sha256)
                {
                    return $"{name} has SHA-256 {actual}, the manifest says {sha256}";
                }
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or EndOfStreamException)
        {
            return $"not a whole tar: {ex.Message}";
        }

        return expected.Count == 0 ? null : $"{expected.Count} sample(s) missing, e.g. {expected.Keys.First()}";
    }

    /// <summary>The manifest's entries grouped by shard, in order (shards are consecutive index ranges).</summary>
    private async IAsyncEnumerable<(int Number, List<ManifestEntry> Entries)> ReadShardsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        List<ManifestEntry>? current = null;
        var number = -1;
        await foreach (var entry in ReadManifestAsync(cancellationToken))
        {
            if (entry.Shard is not { } shard)
            {
                throw new InvalidDataException($"the manifest's item {entry.Index} has no shard: job {jobId} was not submitted with output.format webdataset. Export it as files or imagefolder.");
            }

            if (shard != number && current is not null)
            {
                yield return (number, current);
                current = null;
            }

            number = shard;
            (current ??= []).Add(entry);
        }

        if (current is not null)
        {
            yield return (number, current);
        }
    }

    private static async Task<string> HashFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken));
    }

    /// <summary>The files layout's <c>{key}.json</c> and <c>{key}.txt</c>, rewritten each run (cheap next to hashing the image).</summary>
    private async Task WriteSidecarsAsync(ManifestEntry entry, CancellationToken cancellationToken)
    {
        if (layout != DatasetLayouts.Files)
        {
            return;
        }

        await File.WriteAllTextAsync(Path.Combine(folder, entry.Key + ".json"), JsonSerializer.Serialize(entry, Json) + "\n", cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(folder, entry.Key + ".txt"), entry.Prompt, cancellationToken);
    }

    /// <summary>
    /// <c>metadata.jsonl</c>: one line per image on disk, <c>file_name</c> (relative to the folder, as ImageFolder
    /// reads it) first and then the manifest's columns (<c>shard</c> only for a WebDataset job). Items without an image are left out: ImageFolder needs every
    /// line's file to exist; the manifests keep them, with their status and error. The manifest's null strings
    /// (no duplicate, no error) are written as "": ImageFolder takes each column's type from the file's first 10 MB,
    /// and a column that is null throughout them but a string later fails to load.
    /// </summary>
    private async Task WriteImageFolderMetadataAsync(Dictionary<long, string> failed, CancellationToken cancellationToken)
    {
        var path = Path.Combine(folder, Metadata);
        var partial = path + ".part";
        await using (var writer = new StreamWriter(partial))
        {
            await foreach (var entry in ReadManifestAsync(cancellationToken))
            {
                if (!entry.HasImage || failed.ContainsKey(entry.Index))
                {
                    continue;
                }

                var line = new JsonObject { ["file_name"] = RelativeImagePath(entry.Key) };
                foreach (var (name, value) in JsonSerializer.SerializeToNode(entry, Json)!.AsObject())
                {
                    // The shard is null on every line of a job with the files output (and set on every line of a
                    // WebDataset job): left out rather than turned into a string column.
                    if (value is null && name == "shard")
                    {
                        continue;
                    }

                    // The other nullable columns are strings.
                    line[name] = value?.DeepClone() ?? JsonValue.Create("");
                }

                await writer.WriteAsync(line.ToJsonString(Json));
                await writer.WriteAsync('\n');
            }
        }

        File.Move(partial, path, overwrite: true);
    }

    private async IAsyncEnumerable<ManifestEntry> ReadManifestAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var file = File.OpenRead(Path.Combine(folder, ManifestJsonl));
        await foreach (var entry in RenderFarmClient.ReadManifestAsync(file, cancellationToken))
        {
            yield return entry;
        }
    }
}
