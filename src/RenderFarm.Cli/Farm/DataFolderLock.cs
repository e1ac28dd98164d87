using System.Globalization;
using System.Text.Json;

namespace RenderFarm.Cli.Farm;

/// <summary>
/// One farm per data folder: <c>serve</c> holds an exclusive lock on <c>DATA/serve.lock</c> for as long as it runs,
/// and says who it is in <c>DATA/serve.json</c> (process id, addresses), so a second <c>serve</c> on the same folder
/// stops with that name instead of sharing the database. Two did once: a job sat queued for 14 minutes, placed on a
/// worker of the other process.
/// </summary>
/// <remarks>
/// Why a file lock by hand: .NET's <see cref="FileShare.None"/> is an OS lock (flock on Unix), released by the kernel
/// when the process dies, so a crashed serve never leaves a stale lock behind; no served library adds to that.
/// </remarks>
internal sealed class DataFolderLock : IDisposable
{
    public const string LockFileName = "serve.lock";

    public const string OwnerFileName = "serve.json";

    private readonly FileStream _lock;
    private readonly string _ownerFile;

    private DataFolderLock(FileStream held, string ownerFile)
    {
        _lock = held;
        _ownerFile = ownerFile;
    }

    /// <summary>Who holds a data folder, as it announced itself.</summary>
    public sealed record Owner(int ProcessId, IReadOnlyList<string> Urls, DateTimeOffset StartedAt);

    /// <summary>Takes the folder's lock, or returns null with <paramref name="holder"/> describing who has it.</summary>
    /// <exception cref="IOException">The folder cannot be created or written for another reason.</exception>
    public static DataFolderLock? TryAcquire(string dataRoot, out string holder)
    {
        Directory.CreateDirectory(dataRoot);
        var lockPath = Path.Combine(dataRoot, LockFileName);
        var ownerPath = Path.Combine(dataRoot, OwnerFileName);
        try
        {
            var stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            holder = "";
            return new DataFolderLock(stream, ownerPath);
        }
        catch (IOException) when (File.Exists(lockPath))
        {
            holder = Describe(ownerPath);
            return null;
        }
    }

    /// <summary>Records this process and its addresses for anyone who finds the folder locked.</summary>
    public void Announce(IEnumerable<string> urls)
    {
        var owner = new Owner(Environment.ProcessId, [.. urls], DateTimeOffset.UtcNow);
        File.WriteAllText(_ownerFile, JsonSerializer.Serialize(owner));
    }

    public void Dispose()
    {
        try
        {
            File.Delete(_ownerFile);
        }
        catch (IOException)
        {
            // Best effort: a stale owner file is only read while the lock is held by someone.
        }

        _lock.Dispose();
    }

    private static string Describe(string ownerPath)
    {
        try
        {
            if (JsonSerializer.Deserialize<Owner>(File.ReadAllText(ownerPath)) is { } owner)
            {
                return string.Create(CultureInfo.InvariantCulture,
                    $"renderfarm serve (process {owner.ProcessId}, listening on {string.Join(' ', owner.Urls)}, since {owner.StartedAt:u})");
            }
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException)
        {
            // Not announced yet (still starting) or unreadable: say what we know.
        }

        return "another renderfarm serve (still starting)";
    }
}
