using System.ComponentModel.DataAnnotations;

namespace RenderFarm.Storage;

/// <summary>Which <see cref="IArtifactStore"/> a host uses.</summary>
public enum StorageProvider
{
    /// <summary>An S3 service (Swift/s3api locally, any S3 in production): <see cref="S3ArtifactStore"/>.</summary>
    S3,

    /// <summary>A folder on this machine, for the embedded single-machine farm: <see cref="LocalFolderArtifactStore"/>.</summary>
    Local,
}

/// <summary>
/// The "Storage" configuration section. The farm-wide names that <c>deploy/local/services</c> and the deployments
/// set, <c>RENDERFARM_S3_ENDPOINT</c>, <c>_ACCESS_KEY</c>, <c>_SECRET_KEY</c>, <c>_BUCKET</c> and <c>_SECURE</c>, are read
/// from the same configuration (environment variables in a default host) and win over this section's values.
/// </summary>
public sealed class StorageOptions
{
    public const string SectionName = "Storage";

    public StorageProvider Provider { get; set; } = StorageProvider.S3;

    /// <summary>S3: <c>host:port</c> without a scheme (<see cref="Secure"/> picks https).</summary>
    public string? Endpoint { get; set; }

    public string? AccessKey { get; set; }

    public string? SecretKey { get; set; }

    /// <summary>S3: the bucket, created at first use when missing.</summary>
    [RegularExpression("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", ErrorMessage = "Storage:Bucket must be a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-').")]
    public string Bucket { get; set; } = "renderfarm";

    /// <summary>S3: use https.</summary>
    public bool Secure { get; set; }

    /// <summary>
    /// S3: <c>host:port</c> that clients outside the deployment's network reach the store by (a compose port mapping, an
    /// ingress), used to sign download URLs; null signs them for <see cref="Endpoint"/>. A presigned URL's signature
    /// covers its host, so a URL signed for <c>minio:9000</c> cannot be rewritten to another address afterwards.
    /// </summary>
    public string? PublicEndpoint { get; set; }

    /// <summary>S3: use https in URLs signed for <see cref="PublicEndpoint"/>; null: as <see cref="Secure"/>.</summary>
    public bool? PublicSecure { get; set; }

    /// <summary>S3: the signing region; Swift's s3api is configured with us-east-1.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Region { get; set; } = "us-east-1";

    /// <summary>Local: the folder that holds the artifacts; created when missing.</summary>
    public string? LocalRoot { get; set; }
}
