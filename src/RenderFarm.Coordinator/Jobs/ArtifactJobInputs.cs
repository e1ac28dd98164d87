using RenderFarm.Storage;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>Stores a job's uploaded images next to its outputs: <c>jobs/{jobId}/{name}.png</c>.</summary>
internal sealed class ArtifactJobInputs(IArtifactStore store) : IJobInputs
{
    public async Task<string> SaveAsync(Guid jobId, string name, byte[] png, CancellationToken cancellationToken)
    {
        var key = ArtifactKeys.JobPrefix(jobId) + name + ".png";
        using var content = new MemoryStream(png, writable: false);
        await store.PutAsync(key, content, "image/png", cancellationToken);
        return key;
    }
}
