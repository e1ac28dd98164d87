using System.Text.Json;
using System.Text.Json.Serialization;

namespace RenderFarm.Storage.Models;

/// <summary>
/// The content of <c>models/{name}/manifest.json</c>: every file of a model folder with its size and SHA-256, so a
/// worker can fetch the folder and prove it got exactly what was pushed. The manifest is written after every file, so
/// a model is listed only once all of it is in the store.
/// </summary>
/// <param name="Format">The manifest format; <see cref="CurrentFormat"/> is the only one so far.</param>
/// <param name="Name">The model's name, the folder under <c>models/</c>.</param>
/// <param name="CreatedAt">When the push that wrote this manifest finished uploading the files.</param>
/// <param name="TotalBytes">The sum of the files' sizes.</param>
/// <param name="FileCount">The number of files.</param>
/// <param name="Files">The files in ordinal order of their paths.</param>
public sealed record ModelManifest(
    int Format,
    string Name,
    DateTimeOffset CreatedAt,
    long TotalBytes,
    int FileCount,
    IReadOnlyList<ModelFileEntry> Files)
{
    /// <summary>The format this version writes and reads.</summary>
    public const int CurrentFormat = 1;
}

/// <summary>One file of a model.</summary>
/// <param name="Path">Relative to the model folder, '/'-separated, e.g. <c>unet/model.onnx</c>.</param>
/// <param name="Size">Its length in bytes.</param>
/// <param name="Sha256">Its SHA-256 as 64 lowercase hex digits.</param>
public sealed record ModelFileEntry(string Path, long Size, string Sha256);

/// <summary>One file pushed or fetched, for progress reports.</summary>
/// <param name="Model">The model's name.</param>
/// <param name="File">The file just transferred.</param>
/// <param name="FilesDone">Files transferred so far, this one included.</param>
/// <param name="FileCount">Files in the whole model.</param>
public sealed record ModelFileTransferred(string Model, ModelFileEntry File, int FilesDone, int FileCount);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
[JsonSerializable(typeof(ModelManifest))]
internal sealed partial class ModelManifestJson : JsonSerializerContext;
