using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using RenderFarm.Storage.Telemetry;
using RenderFarm.Testing;

namespace RenderFarm.Storage.Tests;

public sealed class StorageRegistrationTests
{
    private static ServiceProvider Build(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection().AddRenderFarmStorage(configuration).BuildServiceProvider();
    }

    [Fact]
    public void The_farm_environment_names_override_the_storage_section()
    {
        using var provider = Build(new()
        {
            ["Storage:Endpoint"] = "elsewhere:9000",
            ["Storage:AccessKey"] = "section-key",
            ["Storage:SecretKey"] = "section-secret",
            ["RENDERFARM_S3_ENDPOINT"] = "127.0.0.1:58080",
            ["RENDERFARM_S3_ACCESS_KEY"] = "test:tester",
            ["RENDERFARM_S3_SECRET_KEY"] = "testing",
            ["RENDERFARM_S3_BUCKET"] = "other-bucket",
            ["RENDERFARM_S3_SECURE"] = "false",
            ["RENDERFARM_S3_PUBLIC_ENDPOINT"] = "images.example.org:443",
            ["RENDERFARM_S3_PUBLIC_SECURE"] = "true",
        });

        var options = provider.GetRequiredService<IOptions<StorageOptions>>().Value;
        options.PublicEndpoint.ShouldBe("images.example.org:443");
        options.PublicSecure.ShouldBe(true);

        options.Provider.ShouldBe(StorageProvider.S3);
        options.Endpoint.ShouldBe("127.0.0.1:58080");
        options.AccessKey.ShouldBe("test:tester");
        options.SecretKey.ShouldBe("testing");
        options.Bucket.ShouldBe("other-bucket");
        options.Secure.ShouldBeFalse();
        provider.GetRequiredService<IArtifactStore>().ShouldBeOfType<InstrumentedArtifactStore>().Inner.ShouldBeOfType<S3ArtifactStore>().Bucket.ShouldBe("other-bucket");
    }

    [Fact]
    public void The_local_provider_gives_a_folder_store_at_the_configured_root()
    {
        var root = Path.Combine(Path.GetTempPath(), "renderfarm-storage-tests", Guid.NewGuid().ToString("N"));
        try
        {
            using var provider = Build(new() { ["Storage:Provider"] = "Local", ["Storage:LocalRoot"] = root });

            provider.GetRequiredService<IArtifactStore>().ShouldBeOfType<InstrumentedArtifactStore>().Inner.ShouldBeOfType<LocalFolderArtifactStore>().Root.ShouldBe(root);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Startup_validation_names_every_missing_S3_setting()
    {
        using var provider = Build(new() { ["Storage:Bucket"] = "Bad_Bucket" });

        var error = Should.Throw<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());

        error.Message.ShouldContain("Storage:Endpoint");
        error.Message.ShouldContain("Storage:AccessKey");
        error.Message.ShouldContain("Storage:Bucket");
    }

    [Fact]
    public void Startup_validation_refuses_an_endpoint_with_a_scheme_and_a_local_store_without_root()
    {
        using var s3 = Build(new() { ["Storage:Endpoint"] = "http://127.0.0.1:58080", ["Storage:AccessKey"] = "a", ["Storage:SecretKey"] = "b" });
        using var local = Build(new() { ["Storage:Provider"] = "Local" });

        Should.Throw<OptionsValidationException>(() => s3.GetRequiredService<IStartupValidator>().Validate())
            .Message.ShouldContain("without a scheme");
        Should.Throw<OptionsValidationException>(() => local.GetRequiredService<IStartupValidator>().Validate())
            .Message.ShouldContain("Storage:LocalRoot");
    }

    [Fact]
    public void The_services_env_file_format_is_read_with_its_quotes_removed()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(file,
            [
                "export RENDERFARM_POSTGRES='Host=127.0.0.1;Port=55432;Username=postgres;Database=renderfarm'",
                "export RENDERFARM_S3_ACCESS_KEY='test:tester'",
            ]);

            var values = LocalServiceSettings.ParseEnvFile(file);

            values["RENDERFARM_POSTGRES"].ShouldBe("Host=127.0.0.1;Port=55432;Username=postgres;Database=renderfarm");
            values["RENDERFARM_S3_ACCESS_KEY"].ShouldBe("test:tester");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Image_keys_follow_the_job_layout()
    {
        var job = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");

        ArtifactKeys.Image(job, 12).ShouldBe("jobs/0f8fad5b-d9cb-469f-a165-70867728950e/000012.png");
        ArtifactKeys.JobPrefix(job).ShouldBe("jobs/0f8fad5b-d9cb-469f-a165-70867728950e/");
        Should.Throw<ArgumentOutOfRangeException>(() => ArtifactKeys.Image(job, -1));
        Should.Throw<ArgumentException>(() => ArtifactKeys.ModelFile("sd15", "../escape.onnx"));
        Should.Throw<ArgumentException>(() => ArtifactKeys.ModelPrefix("a/b"));
    }
}
