namespace RenderFarm.Storage;

/// <summary>
/// The key rules shared by every store, so a key that works on the local folder works on S3 and back, and so
/// no key can name anything outside a store's root.
/// </summary>
internal static class ArtifactKeyRules
{
    // The Minio SDK refuses longer object names (it counts characters, not the 1024 bytes S3 allows).
    public const int MaxKeyLength = 512;

    public static void ValidateKey(string key, string paramName = "key")
    {
        ArgumentException.ThrowIfNullOrEmpty(key, paramName);
        if (key.Length > MaxKeyLength)
        {
            throw new ArgumentException($"Artifact key is longer than {MaxKeyLength} characters.", paramName);
        }

        if (key[^1] == '/')
        {
            throw new ArgumentException($"Artifact key '{key}' ends with '/': keys name objects, not folders.", paramName);
        }

        ValidatePath(key, paramName);
    }

    /// <summary>A list prefix: empty, or a key's start (it may end with '/').</summary>
    public static void ValidatePrefix(string prefix, string paramName = "prefix")
    {
        ArgumentNullException.ThrowIfNull(prefix, paramName);
        if (prefix.Length == 0)
        {
            return;
        }

        if (prefix.Length > MaxKeyLength)
        {
            throw new ArgumentException($"Prefix is longer than {MaxKeyLength} characters.", paramName);
        }

        ValidatePath(prefix.EndsWith('/') ? prefix[..^1] : prefix, paramName);
    }

    /// <summary>One path segment, such as a model name.</summary>
    public static void ValidateSegment(string segment, string paramName)
    {
        ArgumentException.ThrowIfNullOrEmpty(segment, paramName);
        if (segment.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{segment}' must be a single name without '/'.", paramName);
        }

        ValidatePath(segment, paramName);
    }

    private static void ValidatePath(string path, string paramName)
    {
        if (path.Length == 0 || path[0] == '/')
        {
            throw new ArgumentException($"Artifact key '{path}' must be relative (no leading '/').", paramName);
        }

        foreach (var c in path)
        {
            if (c == '\\' || char.IsControl(c))
            {
                throw new ArgumentException($"Artifact key '{path}' contains '\\' or a control character.", paramName);
            }
        }

        foreach (var segment in path.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == "..")
            {
                throw new ArgumentException(
                    $"Artifact key '{path}' has an empty, '.' or '..' segment; keys cannot climb out of the store.", paramName);
            }
        }
    }
}
