using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using RenderFarm.Storage;

namespace RenderFarm.Worker.Outages;

/// <summary>
/// Waits out an object store that cannot be reached. An unreachable store is the farm's fault, not the item's: a
/// call that fails because the store is down or answering 5xx is retried with capped exponential backoff until it
/// passes or <see cref="WorkerOptions.StoreOutageDeadline"/> is over, instead of failing the item and spending one of
/// its attempts. Meanwhile the item stays Running on this worker, whose heartbeats keep its lease, and
/// <see cref="UnreachableSince"/> says so in the worker's health (degraded) and metrics
/// (<c>renderfarm.worker.store.unreachable</c>).
/// </summary>
public sealed partial class StoreOutage
{
    /// <summary>First wait after a failed call; doubled per try up to <see cref="MaxDelay"/>.</summary>
    public static readonly TimeSpan FirstDelay = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between two tries: a store back from a restart is noticed within this.</summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(10);

    private readonly ResiliencePipeline _pipeline;
    private readonly TimeProvider _time;
    private readonly ILogger<StoreOutage> _logger;
    private long _unreachableSinceTicks;

    public StoreOutage(IOptions<WorkerOptions> options, TimeProvider time, ILogger<StoreOutage> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _time = time;
        _logger = logger;
        var deadline = options.Value.StoreOutageDeadline;
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = time }
            // Outermost, so it bounds the whole wait, tries and delays together.
            .AddTimeout(new TimeoutStrategyOptions { Timeout = deadline })
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is { } ex && IsUnreachable(ex, args.Context.CancellationToken)),
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = FirstDelay,
                MaxDelay = MaxDelay,
                OnRetry = args =>
                {
                    var now = _time.GetUtcNow();
                    Interlocked.CompareExchange(ref _unreachableSinceTicks, now.UtcTicks, 0);
                    LogWaiting(args.Outcome.Exception!, args.AttemptNumber + 1, args.RetryDelay.TotalSeconds, deadline);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    /// <summary>Since when calls to the store have failed as unreachable; null while it answers.</summary>
    public DateTimeOffset? UnreachableSince =>
        Interlocked.Read(ref _unreachableSinceTicks) is var ticks and not 0 ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;

    /// <summary>
    /// Runs <paramref name="call"/> until it passes, fails for a reason of its own, or the deadline is over
    /// (<see cref="TimeoutRejectedException"/>, which callers treat as a retryable item failure).
    /// </summary>
    public async ValueTask<T> ExecuteAsync<T>(Func<CancellationToken, ValueTask<T>> call, CancellationToken cancellationToken)
    {
        var result = await _pipeline.ExecuteAsync(call, cancellationToken);
        if (Interlocked.Exchange(ref _unreachableSinceTicks, 0) is var since and not 0)
        {
            LogRecovered((_time.GetUtcNow() - new DateTimeOffset(since, TimeSpan.Zero)).TotalSeconds);
        }

        return result;
    }

    /// <inheritdoc cref="ExecuteAsync{T}(Func{CancellationToken, ValueTask{T}}, CancellationToken)"/>
    public async ValueTask ExecuteAsync(Func<CancellationToken, ValueTask> call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        await ExecuteAsync(async token =>
        {
            await call(token);
            return true;
        }, cancellationToken);
    }

    /// <summary>
    /// True for failures that say nothing about the item: the store unreachable or failing server-side, or a request
    /// timing out on its own (an HTTP client timeout, not <paramref name="cancellationToken"/>).
    /// </summary>
    internal static bool IsUnreachable(Exception exception, CancellationToken cancellationToken) => exception switch
    {
        ArtifactNotFoundException or ArtifactStoreAccessDeniedException => false,
        ArtifactStoreException store => store.Unreachable,
        HttpRequestException or IOException or TimeoutException => true,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "The object store cannot be reached (try {Attempt}); waiting {DelaySeconds:F1} s and trying again, for at most {Deadline} in all")]
    private partial void LogWaiting(Exception exception, int attempt, double delaySeconds, TimeSpan deadline);

    [LoggerMessage(Level = LogLevel.Information, Message = "The object store answers again after {Seconds:F1} s")]
    private partial void LogRecovered(double seconds);
}
