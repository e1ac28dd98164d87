using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace RenderFarm.Storage;

/// <summary>
/// The data-annotation rules plus the ones that depend on the provider (S3 needs an endpoint and keys, Local a root),
/// so a misconfigured host fails at start with every problem named rather than at its first upload.
/// </summary>
public sealed class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();

        var annotations = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), annotations, validateAllProperties: true);
        failures.AddRange(annotations.Select(r => r.ErrorMessage ?? "Storage options are invalid."));

        switch (options.Provider)
        {
            case StorageProvider.S3:
                if (string.IsNullOrWhiteSpace(options.Endpoint))
                {
                    failures.Add("Storage:Endpoint (or RENDERFARM_S3_ENDPOINT) is required for the S3 provider, e.g. 127.0.0.1:58080.");
                }
                else if (options.Endpoint.Contains("://", StringComparison.Ordinal))
                {
                    failures.Add($"Storage:Endpoint '{options.Endpoint}' must be host:port without a scheme; Storage:Secure chooses https.");
                }

                if (string.IsNullOrEmpty(options.AccessKey) || string.IsNullOrEmpty(options.SecretKey))
                {
                    failures.Add("Storage:AccessKey and Storage:SecretKey (or RENDERFARM_S3_ACCESS_KEY / RENDERFARM_S3_SECRET_KEY) are required for the S3 provider.");
                }

                break;
            case StorageProvider.Local:
                if (string.IsNullOrWhiteSpace(options.LocalRoot))
                {
                    failures.Add("Storage:LocalRoot is required for the Local provider.");
                }

                break;
            default:
                failures.Add($"Storage:Provider '{options.Provider}' is not one of S3, Local.");
                break;
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
