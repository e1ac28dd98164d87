using System.Threading.Channels;
using MassTransit;
using Microsoft.Extensions.Logging;
using RenderFarm.Contracts;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Turns the engine's per-step reports into <see cref="ItemProgressed"/> events for every item of a batch, at most
/// one per <see cref="RenderWorkPolicy.MinProgressInterval"/> besides the first and last step. Reports arrive on the
/// render thread; publishing happens on a pump task so a slow broker never stalls the denoising loop.
/// </summary>
internal sealed partial class ProgressReporter : IProgress<RenderStep>, IAsyncDisposable
{
    private readonly Channel<RenderStep> _steps = Channel.CreateUnbounded<RenderStep>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly IPublishEndpoint _publish;
    private readonly Guid _jobId;
    private readonly IReadOnlyList<RenderItem> _items;
    private readonly ProgressThrottle _throttle;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationToken _cancellationToken;
    private readonly Task _pump;

    public ProgressReporter(
        IPublishEndpoint publish,
        Guid jobId,
        IReadOnlyList<RenderItem> items,
        TimeSpan minInterval,
        TimeProvider time,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        _publish = publish;
        _jobId = jobId;
        _items = items;
        _throttle = new ProgressThrottle(minInterval, time);
        _time = time;
        _logger = logger;
        _cancellationToken = cancellationToken;
        _pump = Task.Run(PumpAsync, CancellationToken.None);
    }

    public void Report(RenderStep value)
    {
        if (_throttle.ShouldSend(value.Step, value.TotalSteps))
        {
            _steps.Writer.TryWrite(value);
        }
    }

    /// <summary>Sends what is queued and waits for it, so no progress event trails the item's completion.</summary>
    public async Task FlushAsync()
    {
        _steps.Writer.TryComplete();
        await _pump;
    }

    public async ValueTask DisposeAsync()
    {
        _steps.Writer.TryComplete();
        try
        {
            await _pump;
        }
        catch (OperationCanceledException)
        {
            // The unit is ending; progress no one will read is not worth waiting for.
        }
    }

    private async Task PumpAsync()
    {
        await foreach (var step in _steps.Reader.ReadAllAsync(CancellationToken.None))
        {
            var at = _time.GetUtcNow();
            foreach (var item in _items)
            {
                try
                {
                    await _publish.Publish(new ItemProgressed(item.ItemId, _jobId, item.Attempt, step.Step, step.TotalSteps, null, at), _cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Progress is advisory; the completion that follows is what counts.
                    LogProgressFailed(ex, item.ItemId);
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Progress of item {ItemId} was not sent")]
    private partial void LogProgressFailed(Exception exception, Guid itemId);
}
