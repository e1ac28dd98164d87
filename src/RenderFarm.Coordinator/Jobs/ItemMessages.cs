using System.Text.Json;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Datasets;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.Items;
using RenderFarm.Storage;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>Translations between item rows, the domain's item specs and the bus's render items.</summary>
internal static class ItemMessages
{
    /// <summary>The bus's item; <paramref name="shardSize"/> is its job's (<see cref="JobRow.ShardSize"/>): set, the image is packed into a dataset part.</summary>
    public static RenderItem ToRenderItem(ItemRow item, int? shardSize = null) => new(
        item.Id, item.Attempt, item.Index, item.Seed, item.Prompt, item.NegativePrompt,
        item.Width, item.Height, item.Steps, item.GuidanceScale, item.Sampler, item.Model, item.Mode,
        item.Strength, item.InitImageKey, item.MaskKey, ImageKey(item.JobId, item.Index),
        item.Hires is null ? null : JsonSerializer.Deserialize<HiresPart>(item.Hires, HiresJobs.PartJson),
        shardSize is { } size
            ? new DatasetPart(ArtifactKeys.DatasetPartPrefix(item.JobId, DatasetShards.Of(item.Index, size)), DatasetShards.MemberName(item.Index, DatasetShards.Png))
            : null);

    public static ItemRow ToRow(Guid jobId, ItemSpec spec) => new()
    {
        Id = Guid.CreateVersion7(),
        JobId = jobId,
        Index = spec.Index,
        Seed = spec.Seed,
        Prompt = spec.Prompt,
        NegativePrompt = spec.NegativePrompt,
        Width = spec.Width,
        Height = spec.Height,
        Steps = spec.Steps,
        GuidanceScale = spec.GuidanceScale,
        Sampler = spec.Sampler,
        Model = spec.Model,
        Mode = spec.Mode,
        Strength = spec.Strength,
        InitImageKey = spec.InitImage,
        MaskKey = spec.Mask,
        State = Domain.States.ItemState.Queued,
        Attempt = 1,
    };

    public static BatchKey BatchKeyOf(ItemRow item) =>
        new(item.Model, item.Width, item.Height, item.Sampler, item.Steps, item.GuidanceScale, item.Mode, item.Strength);

    /// <summary>Where an item's PNG goes. Indexes fit in an int because jobs are capped far below 2^31 items (Coordinator:MaxSweepItems).</summary>
    public static string ImageKey(Guid jobId, long index) => ArtifactKeys.Image(jobId, checked((int)index));
}
