using System.Globalization;

namespace RenderFarm.Storage;

/// <summary>The farm's key layout; every place that names an artifact builds its key here.</summary>
public static class ArtifactKeys
{
    /// <summary>The folder of one job's outputs: <c>jobs/{jobId}/</c>.</summary>
    public static string JobPrefix(Guid jobId) => string.Create(CultureInfo.InvariantCulture, $"jobs/{jobId:D}/");

    /// <summary>The <paramref name="index"/>-th image of a job: <c>jobs/{jobId}/{index:D6}.png</c>.</summary>
    public static string Image(Guid jobId, int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return string.Create(CultureInfo.InvariantCulture, $"jobs/{jobId:D}/{index:D6}.png");
    }

    /// <summary>The folder of one job's WebDataset shards: <c>datasets/{jobId}/</c>.</summary>
    public static string DatasetPrefix(Guid jobId) => string.Create(CultureInfo.InvariantCulture, $"datasets/{jobId:D}/");

    /// <summary>One WebDataset shard of a job: <c>datasets/{jobId}/{shard:D6}.tar</c>.</summary>
    public static string DatasetShard(Guid jobId, int shard)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        return string.Create(CultureInfo.InvariantCulture, $"datasets/{jobId:D}/{shard:D6}.tar");
    }

    /// <summary>A shard's statistics (img2dataset's <c>{shard}_stats.json</c>): <c>datasets/{jobId}/{shard:D6}_stats.json</c>.</summary>
    public static string DatasetShardStats(Guid jobId, int shard)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        return string.Create(CultureInfo.InvariantCulture, $"datasets/{jobId:D}/{shard:D6}_stats.json");
    }

    /// <summary>
    /// The folder of the tar parts workers write for one shard before it is assembled:
    /// <c>datasets/{jobId}/parts/{shard:D6}/</c>.
    /// </summary>
    public static string DatasetPartPrefix(Guid jobId, int shard)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        return string.Create(CultureInfo.InvariantCulture, $"datasets/{jobId:D}/parts/{shard:D6}/");
    }

    /// <summary>The folder of one model's files: <c>models/{name}/</c>.</summary>
    public static string ModelPrefix(string modelName)
    {
        ArtifactKeyRules.ValidateSegment(modelName, nameof(modelName));
        return $"models/{modelName}/";
    }

    /// <summary>
    /// One file of a model: <c>models/{name}/{relativePath}</c>, with <paramref name="relativePath"/> relative to the
    /// model's folder (e.g. <c>unet/model.onnx</c>; '\' separators are turned into '/').
    /// </summary>
    public static string ModelFile(string modelName, string relativePath)
    {
        ArgumentNullException.ThrowIfNull(relativePath);
        var key = ModelPrefix(modelName) + relativePath.Replace('\\', '/');
        ArtifactKeyRules.ValidateKey(key, nameof(relativePath));
        return key;
    }
}
