using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.Datasets.ShardAssembler;

/// <summary>How the WebDataset shard assembler runs, bound from <c>Coordinator:Datasets</c>.</summary>
public sealed class ShardAssemblerOptions
{
    public const string SectionName = "Coordinator:Datasets";

    /// <summary>A shard is published within a few seconds of its last item; each idle pass is one indexed query per unfinished dataset.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(2);

    /// <summary>Datasets looked at per pass, so one pass never holds the database for long.</summary>
    public const int DefaultJobsPerPass = 50;

    /// <summary>Shards assembled per dataset per pass: a shard is up to a thousand images read and one upload.</summary>
    public const int DefaultShardsPerPass = 8;

    public TimeSpan Interval { get; set; } = DefaultInterval;

    public int JobsPerPass { get; set; } = DefaultJobsPerPass;

    public int ShardsPerPass { get; set; } = DefaultShardsPerPass;
}

internal sealed class ShardAssemblerOptionsValidator : IValidateOptions<ShardAssemblerOptions>
{
    public ValidateOptionsResult Validate(string? name, ShardAssemblerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.Interval <= TimeSpan.Zero)
        {
            failures.Add($"{ShardAssemblerOptions.SectionName}:{nameof(options.Interval)} must be positive.");
        }

        if (options.JobsPerPass < 1)
        {
            failures.Add($"{ShardAssemblerOptions.SectionName}:{nameof(options.JobsPerPass)} must be at least 1.");
        }

        if (options.ShardsPerPass < 1)
        {
            failures.Add($"{ShardAssemblerOptions.SectionName}:{nameof(options.ShardsPerPass)} must be at least 1.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
