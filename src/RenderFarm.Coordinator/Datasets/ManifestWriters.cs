using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace RenderFarm.Coordinator.Datasets;

/// <summary>
/// Writes a manifest page by page. The formats are siblings behind this one shape (img2dataset's writers are the
/// model), so the endpoint streams pages without branching on the format.
/// </summary>
internal interface IManifestWriter : IAsyncDisposable
{
    Task WritePageAsync(IReadOnlyList<ManifestEntry> page, CancellationToken cancellationToken);

    /// <summary>Ends the manifest (a Parquet file's footer) and sends what is still held.</summary>
    Task CompleteAsync(CancellationToken cancellationToken);
}

/// <summary>The manifest formats <c>?format=</c> names; each name is also its file extension.</summary>
internal static class ManifestFormats
{
    public const string Jsonl = "jsonl";
    public const string Parquet = "parquet";

    public static readonly IReadOnlyList<string> All = [Jsonl, Parquet];

    public static string ContentType(string format) => format switch
    {
        Jsonl => "application/x-ndjson",
        Parquet => "application/vnd.apache.parquet",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Not a manifest format."),
    };

    public static IManifestWriter Create(string format, Stream output) => format switch
    {
        Jsonl => new JsonlManifestWriter(output),
        Parquet => new ParquetManifestWriter(output),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Not a manifest format."),
    };
}

/// <summary>One JSON object per line, every column present (null included), so line-oriented readers see one shape.</summary>
internal sealed class JsonlManifestWriter(Stream output) : IManifestWriter
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        // A data file, never embedded in HTML: prompts keep their characters instead of \u escapes.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static readonly byte[] NewLine = "\n"u8.ToArray();

    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);

    public async Task WritePageAsync(IReadOnlyList<ManifestEntry> page, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(page);
        await using (var writer = new Utf8JsonWriter(_buffer, new JsonWriterOptions { Encoder = Json.Encoder }))
        {
            foreach (var entry in page)
            {
                JsonSerializer.Serialize(writer, entry, Json);
                writer.Flush();
                _buffer.Write(NewLine);
                writer.Reset();
            }
        }

        await output.WriteAsync(_buffer.WrittenMemory, cancellationToken);
        _buffer.ResetWrittenCount();
    }

    public Task CompleteAsync(CancellationToken cancellationToken) => output.FlushAsync(cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>
/// The same columns as Parquet, one row group per page. Parquet's footer (the offsets of every row group) comes last
/// and the library wants a seekable stream, so the file is spooled to a temporary file and sent once complete: memory
/// stays at one page whatever the job's size, at the cost of the first byte arriving after the last row is read.
/// </summary>
internal sealed class ParquetManifestWriter(Stream output) : IManifestWriter
{
    private static readonly DataField<string> Key = new("key", nullable: false);
    private static readonly DataField<long> Index = new("index");
    private static readonly DataField<string> Prompt = new("prompt", nullable: false);
    private static readonly DataField<string> NegativePrompt = new("negativePrompt", nullable: false);
    private static readonly DataField<long> Seed = new("seed");
    private static readonly DataField<int> Steps = new("steps");
    private static readonly DataField<double> GuidanceScale = new("guidanceScale");
    private static readonly DataField<string> Sampler = new("sampler", nullable: false);
    private static readonly DataField<string> Model = new("model", nullable: false);
    private static readonly DataField<string> ModelHash = new("modelHash", nullable: true);
    private static readonly DataField<int> Width = new("width");
    private static readonly DataField<int> Height = new("height");
    private static readonly DataField<string> Sha256 = new("sha256", nullable: true);
    private static readonly DataField<string> Status = new("status", nullable: false);
    private static readonly DataField<string> Error = new("error", nullable: true);
    private static readonly DataField<int?> Shard = new("shard");
    private static readonly DataField<string> Url = new("url", nullable: true);
    private static readonly DataField<string> DuplicateOf = new("duplicateOf", nullable: true);
    private static readonly DataField<string> Safety = new("safety", nullable: true);

    private static readonly ParquetSchema Schema = new(
        Key, Index, Prompt, NegativePrompt, Seed, Steps, GuidanceScale, Sampler, Model, ModelHash, Width, Height, Sha256, Status, Error, Shard, Url, DuplicateOf, Safety);

    private readonly FileStream _spool = new(
        Path.Combine(Path.GetTempPath(), $"renderfarm-manifest-{Guid.NewGuid():N}.parquet"),
        FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 64 * 1024, FileOptions.Asynchronous | FileOptions.DeleteOnClose);

    private ParquetWriter? _writer;

    public async Task WritePageAsync(IReadOnlyList<ManifestEntry> page, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(page);
        _writer ??= await ParquetWriter.CreateAsync(Schema, _spool, cancellationToken: cancellationToken);
        using var group = _writer.CreateRowGroup();
        await group.WriteAsync(Key, page.Select(e => e.Key).ToArray());
        await group.WriteAsync<long>(Index, page.Select(e => e.Index).ToArray(), cancellationToken: cancellationToken);
        await group.WriteAsync(Prompt, page.Select(e => e.Prompt).ToArray());
        await group.WriteAsync(NegativePrompt, page.Select(e => e.NegativePrompt).ToArray());
        await group.WriteAsync<long>(Seed, page.Select(e => e.Seed).ToArray(), cancellationToken: cancellationToken);
        await group.WriteAsync<int>(Steps, page.Select(e => e.Steps).ToArray(), cancellationToken: cancellationToken);
        await group.WriteAsync<double>(GuidanceScale, page.Select(e => e.GuidanceScale).ToArray(), cancellationToken: cancellationToken);
        await group.WriteAsync(Sampler, page.Select(e => e.Sampler).ToArray());
        await group.WriteAsync(Model, page.Select(e => e.Model).ToArray());
        await group.WriteAsync(ModelHash, page.Select(e => e.ModelHash).ToArray());
        await group.WriteAsync<int>(Width, page.Select(e => e.Width).ToArray(), cancellationToken: cancellationToken);
        await group.WriteAsync<int>(Height, page.Select(e => e.Height).ToArray(), cancellationToken: cancellationToken);
        await group.WriteAsync(Sha256, page.Select(e => e.Sha256).ToArray());
        await group.WriteAsync(Status, page.Select(e => e.Status).ToArray());
        await group.WriteAsync(Error, page.Select(e => e.Error).ToArray());
        await group.WriteAsync<int>(Shard, page.Select(e => e.Shard).ToArray(), cancellationToken: cancellationToken);
        await group.WriteAsync(Url, page.Select(e => e.Url).ToArray());
        await group.WriteAsync(DuplicateOf, page.Select(e => e.DuplicateOf).ToArray());
        await group.WriteAsync(Safety, page.Select(e => e.Safety).ToArray());
        group.CompleteValidate();
    }

    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        // A job with no items still gets a valid (empty) file with the schema.
        _writer ??= await ParquetWriter.CreateAsync(Schema, _spool, cancellationToken: cancellationToken);
        await _writer.DisposeAsync();
        _writer = null;
        _spool.Position = 0;
        await _spool.CopyToAsync(output, cancellationToken);
        await output.FlushAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_writer is not null)
        {
            await _writer.DisposeAsync();
        }

        await _spool.DisposeAsync();
    }
}
