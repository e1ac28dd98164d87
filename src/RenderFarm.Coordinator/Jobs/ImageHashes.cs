using RenderFarm.Coordinator.Persistence;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>The one spelling of an image's SHA-256 the ledger keeps, so equal images compare equal in SQL.</summary>
internal static class ImageHashes
{
    /// <summary>
    /// <paramref name="reported"/> in lowercase hex, or null when it is not a SHA-256 at all: a malformed hash is
    /// dropped rather than failing the image, which is stored and good either way.
    /// </summary>
    public static string? Normalize(string? reported) =>
        reported is { Length: ItemRow.Sha256Length } && reported.All(char.IsAsciiHexDigit)
            ? reported.ToLowerInvariant()
            : null;
}
