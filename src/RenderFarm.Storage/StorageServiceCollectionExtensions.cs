using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using RenderFarm.Storage.Telemetry;

namespace RenderFarm.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="StorageOptions"/> (section "Storage", overridden by the RENDERFARM_S3_* names, validated at
    /// start) and a singleton <see cref="IArtifactStore"/> for the configured provider, timed and counted by
    /// <see cref="InstrumentedArtifactStore"/>.
    /// </summary>
    public static IServiceCollection AddRenderFarmStorage(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddOptions<StorageOptions>()
            .Bind(configuration.GetSection(StorageOptions.SectionName))
            .PostConfigure(options => ApplyFarmEnvironmentNames(options, configuration))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>();
        services.AddSingleton<IArtifactStore>(provider =>
        {
            var options = provider.GetRequiredService<IOptions<StorageOptions>>().Value;
            IArtifactStore store = options.Provider switch
            {
                StorageProvider.Local => new LocalFolderArtifactStore(options.LocalRoot!),
                _ => new S3ArtifactStore(options),
            };
            return new InstrumentedArtifactStore(store);
        });
        return services;
    }

    /// <summary>
    /// Applies the farm-wide settings that deploy/local/services writes (and the deployments set) over the section:
    /// they are set only on purpose, where they describe the S3 service actually running.
    /// </summary>
    public static void ApplyFarmEnvironmentNames(StorageOptions options, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(configuration);

        if (configuration["RENDERFARM_S3_ENDPOINT"] is { Length: > 0 } endpoint)
        {
            options.Endpoint = endpoint;
        }

        if (configuration["RENDERFARM_S3_ACCESS_KEY"] is { Length: > 0 } accessKey)
        {
            options.AccessKey = accessKey;
        }

        if (configuration["RENDERFARM_S3_SECRET_KEY"] is { Length: > 0 } secretKey)
        {
            options.SecretKey = secretKey;
        }

        if (configuration["RENDERFARM_S3_BUCKET"] is { Length: > 0 } bucket)
        {
            options.Bucket = bucket;
        }

        if (configuration["RENDERFARM_S3_SECURE"] is { Length: > 0 } secure)
        {
            options.Secure = ParseFlag(secure);
        }

        if (configuration["RENDERFARM_S3_PUBLIC_ENDPOINT"] is { Length: > 0 } publicEndpoint)
        {
            options.PublicEndpoint = publicEndpoint;
        }

        if (configuration["RENDERFARM_S3_PUBLIC_SECURE"] is { Length: > 0 } publicSecure)
        {
            options.PublicSecure = ParseFlag(publicSecure);
        }
    }

    private static bool ParseFlag(string value) => bool.TryParse(value, out var flag) ? flag : value.Trim() == "1";
}
