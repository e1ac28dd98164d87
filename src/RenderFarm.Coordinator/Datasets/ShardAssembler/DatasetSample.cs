namespace RenderFarm.Coordinator.Datasets.ShardAssembler;

/// <summary>
/// A sample's <c>{key}.json</c> in a shard: every generation parameter, the model's name and content hash, the PNG's
/// SHA-256, the worker that rendered it and how long that took (<c>renderSeconds</c>: from the start of its render to
/// its image in memory, as the worker reported it; null from workers that report none) and the safety checker's
/// outcome (<c>safety</c>: passed, flagged or blurred; null when no checker ran).
/// </summary>
public sealed record DatasetSample(
    string Key,
    long Index,
    int Shard,
    string Prompt,
    string NegativePrompt,
    long Seed,
    int Steps,
    double GuidanceScale,
    string Sampler,
    string Mode,
    double? Strength,
    string Model,
    string? ModelHash,
    int Width,
    int Height,
    string? Sha256,
    string? Worker,
    double? RenderSeconds,
    string Status,
    string? Safety);

/// <summary>
/// A shard's <c>{shard}_stats.json</c>, as img2dataset's: how many items its range holds, how many became samples
/// and how many failed (or were canceled), and when its items ran (<c>duration</c>: seconds from <c>start</c> to
/// <c>end</c>; 0 when no item ran).
/// </summary>
public sealed record ShardStats(
    int Shard,
    int Count,
    int Successes,
    int Failures,
    double Duration,
    DateTimeOffset? Start,
    DateTimeOffset? End);
