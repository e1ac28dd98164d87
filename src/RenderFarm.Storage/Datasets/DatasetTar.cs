using System.Formats.Tar;

namespace RenderFarm.Storage.Datasets;

/// <summary>
/// The tar files of WebDataset output (workers' parts and the coordinator's shards), written and read with the BCL's
/// <see cref="TarWriter"/> and <see cref="TarReader"/>. Members are plain files in the ustar format, which every tar
/// reader (Python's tarfile, webdataset, GNU tar) reads.
/// </summary>
public static class DatasetTar
{
    /// <summary>Adds one member holding <paramref name="content"/>.</summary>
    public static async Task WriteMemberAsync(TarWriter writer, string name, ReadOnlyMemory<byte> content, DateTimeOffset modified, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var entry = new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(content.ToArray(), writable: false),
            ModificationTime = modified,
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
        };
        await writer.WriteEntryAsync(entry, cancellationToken);
    }

    /// <summary>
    /// The members of <paramref name="tar"/> whose names <paramref name="wanted"/> accepts, each read whole, in the
    /// tar's order; reads the stream once from its start to its end.
    /// </summary>
    public static async IAsyncEnumerable<(string Name, byte[] Content)> ReadMembersAsync(
        Stream tar,
        Func<string, bool> wanted,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(wanted);
        await using var reader = new TarReader(tar, leaveOpen: true);
        while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || !wanted(entry.Name) || entry.DataStream is null)
            {
                continue;
            }

            using var content = new MemoryStream(checked((int)entry.Length));
            await entry.DataStream.CopyToAsync(content, cancellationToken);
            yield return (entry.Name, content.ToArray());
        }
    }

    /// <summary>The one member named <paramref name="name"/>, or null when the tar has none.</summary>
    public static async Task<byte[]?> ReadMemberAsync(Stream tar, string name, CancellationToken cancellationToken)
    {
        await foreach (var (_, content) in ReadMembersAsync(tar, n => n == name, cancellationToken))
        {
            return content;
        }

        return null;
    }
}
