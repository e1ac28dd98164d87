using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>How the AUTOMATIC1111-compatible API waits for its jobs, bound from <c>Coordinator:Automatic1111</c>.</summary>
public sealed class Automatic1111Options
{
    public const string SectionName = "Coordinator:Automatic1111";

    /// <summary>
    /// A1111 answers a txt2img call only when the images exist, so clients wait minutes without complaint; ten minutes
    /// covers a large batch on a busy farm while still answering a client whose job waits for a worker that never comes.
    /// </summary>
    public static readonly TimeSpan DefaultWaitTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Job-done events reach only the coordinator that recorded them; this poll finds jobs finished through another
    /// coordinator. Once a second costs one small read per waiting request.
    /// </summary>
    public static readonly TimeSpan DefaultPollInterval = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait a request may be configured for: past a day an HTTP request is the wrong tool.</summary>
    public static readonly TimeSpan MaxWaitTimeout = TimeSpan.FromDays(1);

    /// <summary>How long <c>txt2img</c>/<c>img2img</c> wait for their job before answering 504 with the job's id (the job goes on).</summary>
    public TimeSpan WaitTimeout { get; set; } = DefaultWaitTimeout;

    /// <summary>How often a waiting request re-reads its job's state besides listening for events.</summary>
    public TimeSpan PollInterval { get; set; } = DefaultPollInterval;
}

internal sealed class Automatic1111OptionsValidator : IValidateOptions<Automatic1111Options>
{
    public ValidateOptionsResult Validate(string? name, Automatic1111Options options)
    {
        var failures = new List<string>();
        if (options.WaitTimeout <= TimeSpan.Zero || options.WaitTimeout > Automatic1111Options.MaxWaitTimeout)
        {
            failures.Add($"{Automatic1111Options.SectionName}:{nameof(options.WaitTimeout)} must be more than zero and at most {Automatic1111Options.MaxWaitTimeout:c}.");
        }

        if (options.PollInterval <= TimeSpan.Zero || options.PollInterval > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{Automatic1111Options.SectionName}:{nameof(options.PollInterval)} must be more than zero and at most 00:01:00.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
