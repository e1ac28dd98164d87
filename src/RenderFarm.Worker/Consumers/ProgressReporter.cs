using System.Threading.Channels;
using MassTransit;
using Microsoft.Extensions.Logging;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Turns the engine's per-step reports into <see cref="ItemProgressed"/> events for every item of a batch, at most
/// one per <see cref="RenderWorkPolicy.MinProgressInterval"/> besides the first and last step, and, when previews are
/// on, into <see cref="ItemPreviewed"/> at most one per <see cref="RenderWorkPolicy.PreviewInterval"/>. Reports arrive
/// on the render thread, which only copies the preview out of the live latents; encoding and publishing happen on a
/// pump task, so a slow broker never stalls the denoising loop.
/// </summary>
internal sealed partial class ProgressReporter : IProgress<RenderStep>, IAsyncDisposable
{
    /// <summary>Quality of preview JPEGs: a 64×64 preview (a 512² render) stays around 2 KiB.</summary>
    internal const int PreviewQuality = 75;

    internal const string PreviewContentType = "image/jpeg";

    /// <summary>A preview older than this is not worth delivering: the item has moved on (or finished) by then.</summary>
    internal static readonly TimeSpan PreviewTimeToLive = TimeSpan.FromSeconds(30);

    private readonly Channel<PendingReport> _reports = Channel.CreateUnbounded<PendingReport>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly IPublishEndpoint _publish;
    private readonly Guid _jobId;
    private readonly IReadOnlyList<RenderItem> _items;
    private readonly ProgressThrottle _throttle;
    private readonly PreviewThrottle? _previews;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationToken _cancellationToken;
    private readonly Task _pump;

    // previewInterval: least time between two previews of an item; null sends none.
    public ProgressReporter(
        IPublishEndpoint publish,
        Guid jobId,
        IReadOnlyList<RenderItem> items,
        TimeSpan minInterval,
        TimeSpan? previewInterval,
        TimeProvider time,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        _publish = publish;
        _jobId = jobId;
        _items = items;
        _throttle = new ProgressThrottle(minInterval, time);
        _previews = previewInterval is { } interval ? new PreviewThrottle(interval, time) : null;
        _time = time;
        _logger = logger;
        _cancellationToken = cancellationToken;
        _pump = Task.Run(PumpAsync, CancellationToken.None);
    }

    public void Report(RenderStep value)
    {
        var progress = _throttle.ShouldSend(value.Step, value.TotalSteps);
        RgbImage?[]? previews = null;
        if (_previews is not null && value.Latents is { } latents && _previews.ShouldSend(value.Step, value.TotalSteps))
        {
            // Copied now: the next step overwrites the latents this reads.
            previews = new RgbImage?[_items.Count];
            for (var i = 0; i < previews.Length && i < latents.Images; i++)
            {
                previews[i] = latents.Render(i);
            }
        }

        if (progress || previews is not null)
        {
            _reports.Writer.TryWrite(new PendingReport(value, progress, previews));
        }
    }

    /// <summary>Sends what is queued and waits for it, so no progress event trails the item's completion.</summary>
    public async Task FlushAsync()
    {
        _reports.Writer.TryComplete();
        await _pump;
    }

    public async ValueTask DisposeAsync()
    {
        _reports.Writer.TryComplete();
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
        await foreach (var report in _reports.Reader.ReadAllAsync(CancellationToken.None))
        {
            var step = report.Step;
            var at = _time.GetUtcNow();
            for (var i = 0; i < _items.Count; i++)
            {
                var item = _items[i];
                try
                {
                    if (report.Progress)
                    {
                        await _publish.Publish(new ItemProgressed(item.ItemId, _jobId, item.Attempt, step.Step, step.TotalSteps, null, at), _cancellationToken);
                    }

                    if (report.Previews?[i] is { } image)
                    {
                        var preview = new ItemPreviewed(item.ItemId, _jobId, item.Attempt, item.Index, step.Step, step.TotalSteps,
                            PreviewContentType, PngCodec.EncodeJpeg(image, PreviewQuality), image.Width, image.Height, at);
                        await _publish.Publish(preview, context => context.TimeToLive = PreviewTimeToLive, _cancellationToken);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Progress and previews are advisory; the completion that follows is what counts.
                    LogProgressFailed(ex, item.ItemId);
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Progress of item {ItemId} was not sent")]
    private partial void LogProgressFailed(Exception exception, Guid itemId);

    private sealed record PendingReport(RenderStep Step, bool Progress, RgbImage?[]? Previews);
}
