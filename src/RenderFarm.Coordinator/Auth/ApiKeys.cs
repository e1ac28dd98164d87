using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using RenderFarm.Coordinator.Persistence;

namespace RenderFarm.Coordinator.Auth;

/// <summary>A key as created: the only time its plaintext exists outside the caller's hands.</summary>
public sealed record CreatedApiKey(string Id, string Key, string Tenant, FarmRole Role, DateTime CreatedAt);

/// <summary>A stored key as listed: everything but its hash.</summary>
public sealed record ApiKeySummary(string Id, string Tenant, FarmRole Role, DateTime CreatedAt, DateTime? RevokedAt);

/// <summary>What the key handler learns from a valid key.</summary>
public sealed record ApiKeyIdentity(string Id, string Tenant, FarmRole Role);

/// <summary>
/// Creates, checks, lists and revokes API keys. A key reads <c>rf_ID_SECRET</c>: the prefix tells it apart from other
/// secrets (in logs, in secret scanners), the 16-hex-digit id finds its row, and the 256-bit secret proves it.
/// </summary>
public sealed partial class ApiKeys(CoordinatorDbContext db, TimeProvider clock)
{
    public const string Prefix = "rf_";

    private const int IdBytes = ApiKeyRow.IdLength / 2;

    private const int SecretBytes = 32;

    private static readonly int KeyLength = Prefix.Length + ApiKeyRow.IdLength + 1 + Base64Url.GetEncodedLength(SecretBytes);

    /// <summary>Validates a tenant name: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit.</summary>
    public static bool IsValidTenant(string? tenant) => tenant is not null && TenantPattern().IsMatch(tenant);

    public static string TenantRule => $"a tenant is 1 to {ApiKeyRow.MaxTenantLength} characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit";

    public async Task<CreatedApiKey> CreateAsync(string tenant, FarmRole role, CancellationToken cancellationToken)
    {
        if (!IsValidTenant(tenant))
        {
            throw new ArgumentException($"'{tenant}' is not a tenant name: {TenantRule}.", nameof(tenant));
        }

        if (!Enum.IsDefined(role))
        {
            throw new ArgumentOutOfRangeException(nameof(role), role, "Not a role.");
        }

        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(IdBytes));
        var key = $"{Prefix}{id}_{Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes))}";
        var now = clock.GetUtcNow().UtcDateTime;
        db.Set<ApiKeyRow>().Add(new ApiKeyRow { Id = id, Tenant = tenant, Role = role, SecretHash = Hash(key), CreatedAt = now });
        await db.SaveChangesAsync(cancellationToken);
        return new CreatedApiKey(id, key, tenant, role, now);
    }

    /// <summary>The key's identity when it is well formed, known and not revoked; otherwise null.</summary>
    public async Task<ApiKeyIdentity?> VerifyAsync(string key, CancellationToken cancellationToken)
    {
        if (!TryParseId(key, out var id))
        {
            return null;
        }

        var row = await db.Set<ApiKeyRow>().AsNoTracking().FirstOrDefaultAsync(k => k.Id == id, cancellationToken);

        // Constant time, so the response time does not tell how much of a guessed secret matched.
        return row is null || row.RevokedAt is not null || !CryptographicOperations.FixedTimeEquals(row.SecretHash, Hash(key))
            ? null
            : new ApiKeyIdentity(row.Id, row.Tenant, row.Role);
    }

    public async Task<IReadOnlyList<ApiKeySummary>> ListAsync(CancellationToken cancellationToken) =>
        await db.Set<ApiKeyRow>().AsNoTracking().OrderBy(k => k.CreatedAt).ThenBy(k => k.Id)
            .Select(k => new ApiKeySummary(k.Id, k.Tenant, k.Role, k.CreatedAt, k.RevokedAt))
            .ToListAsync(cancellationToken);

    /// <summary>Revokes the key with this id (or the id of this whole key); false when there is none. Revoking twice keeps the first time.</summary>
    public async Task<bool> RevokeAsync(string idOrKey, CancellationToken cancellationToken)
    {
        var id = TryParseId(idOrKey, out var parsed) ? parsed : idOrKey;
        var row = await db.Set<ApiKeyRow>().FirstOrDefaultAsync(k => k.Id == id, cancellationToken);
        if (row is null)
        {
            return false;
        }

        row.RevokedAt ??= clock.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
        return true;
    }

    // SHA-256, not a slow password hash (PBKDF2, Argon2): those protect low-entropy secrets people choose, whereas a
    // 256-bit random secret cannot be guessed from its hash however fast the hash is, and every request verifies one.
    internal static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private static bool TryParseId(string key, out string id)
    {
        id = "";
        if (key.Length != KeyLength || !key.StartsWith(Prefix, StringComparison.Ordinal) || key[Prefix.Length + ApiKeyRow.IdLength] != '_')
        {
            return false;
        }

        id = key.Substring(Prefix.Length, ApiKeyRow.IdLength);
        return id.All(char.IsAsciiHexDigitLower);
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex TenantPattern();
}
