using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace RenderFarm.Storage.Models;

/// <summary>
/// One SHA-256 that names a model's content, for datasets to record which weights made each image (a name can be
/// pushed again with other files). It hashes the list a manifest holds — each file's '/'-separated path, size and
/// SHA-256, one <c>path\tsize\tsha256\n</c> line per file in ordinal path order — so a folder and the store's manifest
/// of the same files give the same value.
/// </summary>
/// <remarks>
/// The files are the ones a push takes (hidden names skipped) less the memory profile
/// (<see cref="MemoryProfileFile"/>): a calibration of the machine, rewritten by <c>renderfarm plan --calibrate</c>,
/// not part of the model. Hashing a real model's 2–7 GB takes seconds; workers do it once per model they open.
/// </remarks>
public static class ModelContentHash
{
    /// <summary>The engine's memory profile beside the model (<c>MemoryProfile.FileName</c>).</summary>
    public const string MemoryProfileFile = "renderfarm-memory.json";

    /// <summary>The hash of the files <paramref name="files"/> lists (a manifest's entries), as 64 lowercase hex digits.</summary>
    public static string Of(IEnumerable<ModelFileEntry> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files.Where(f => f.Path != MemoryProfileFile).OrderBy(f => f.Path, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{file.Path}\t{file.Size}\t{file.Sha256}\n")));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The hash of the model folder <paramref name="root"/>, reading every file once.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static string OfFolder(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        var entries = new List<ModelFileEntry>();
        foreach (var relative in ModelRepository.ModelFolderFiles(root))
        {
            using var stream = File.OpenRead(Path.Combine(root, relative));
            entries.Add(new ModelFileEntry(relative, stream.Length, Convert.ToHexStringLower(SHA256.HashData(stream))));
        }

        return Of(entries);
    }
}
