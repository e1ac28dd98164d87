using RenderFarm.Testing;

namespace RenderFarm.Storage.Tests;

/// <summary>The S3 that <c>deploy/local/services start</c> runs, as the storage options that reach it.</summary>
internal static class LocalServices
{
    public static StorageOptions S3Options() => new()
    {
        Provider = StorageProvider.S3,
        Endpoint = LocalServiceSettings.Require("RENDERFARM_S3_ENDPOINT"),
        AccessKey = LocalServiceSettings.Require("RENDERFARM_S3_ACCESS_KEY"),
        SecretKey = LocalServiceSettings.Require("RENDERFARM_S3_SECRET_KEY"),
        Bucket = LocalServiceSettings.Require("RENDERFARM_S3_BUCKET"),
        Secure = bool.Parse(LocalServiceSettings.Require("RENDERFARM_S3_SECURE")),
    };
}
