using System.Security.Cryptography;

namespace RenderFarm.Worker.Rendering;

/// <summary>The content hash workers report with each image (<see cref="Contracts.ItemRendered.Sha256"/>).</summary>
public static class PngHash
{
    /// <summary>SHA-256 of <paramref name="png"/>, lowercase hex (as <c>sha256sum</c> prints it).</summary>
    public static string Sha256Hex(ReadOnlySpan<byte> png) => Convert.ToHexStringLower(SHA256.HashData(png));
}
