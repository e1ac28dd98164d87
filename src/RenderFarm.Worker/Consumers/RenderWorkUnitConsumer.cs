using System.Diagnostics;
using System.Formats.Tar;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Storage;
using RenderFarm.Storage.Datasets;
using RenderFarm.Telemetry;
using RenderFarm.Worker.Cancellation;
using RenderFarm.Worker.Heartbeats;
using RenderFarm.Worker.Models;
using RenderFarm.Worker.Outages;
using RenderFarm.Worker.Rendering;
using RenderFarm.Worker.Slots;
using RenderFarm.Worker.Telemetry;

namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Renders a <see cref="RenderWorkUnit"/> on a free slot. Per item: its start, rate-limited
/// <see cref="ItemProgressed"/> and (when on) <see cref="ItemPreviewed"/>, the PNG uploaded to the item's output key, and only then
/// its image reported (items of a WebDataset job are packed per unit into tar parts instead: see
/// <see cref="UploadPartsAsync"/>); a fault becomes <see cref="ItemFailed"/> (retryable or not) while the unit's other
/// items go on. Starts (as each render batch begins) and images are reported as <see cref="UnitReports"/> says: by
/// default gathered into <see cref="ItemsStarted"/> and <see cref="ItemsRendered"/>; per item
/// (<see cref="ItemStarted"/>, <see cref="ItemRendered"/>) when set so. A canceled job's items end silently. Past the shutdown grace the consume token is canceled and
/// the exception is left to MassTransit, which does not acknowledge the unit, so the broker redelivers it.
/// </summary>
public sealed partial class RenderWorkUnitConsumer(
    WorkerSlotPool pool,
    JobCancellations cancellations,
    WorkerLifecycle lifecycle,
    HeartbeatPublisher heartbeats,
    IArtifactStore store,
    StoreOutage storeOutage,
    IOptions<WorkerOptions> options,
    TimeProvider time,
    WorkerMetrics metrics,
    ILogger<RenderWorkUnitConsumer> logger) : IConsumer<RenderWorkUnit>
{
    private const string PngContentType = "image/png";
    private const string TarContentType = "application/x-tar";

    /// <summary>How long the final Draining heartbeat may take when the consume token is already canceled.</summary>
    private static readonly TimeSpan FinalHeartbeatTimeout = TimeSpan.FromSeconds(5);

    private readonly RenderWorkPolicy _policy = RenderWorkPolicy.From(options.Value);

    public async Task Consume(ConsumeContext<RenderWorkUnit> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var unit = context.Message;
        if (cancellations.IsCanceled(unit.JobId, unit.DispatchedAt))
        {
            LogSkippedCanceled(unit.WorkUnitId, unit.JobId);
            return;
        }

        using var lease = await pool.AcquireAsync(context.CancellationToken);
        var slot = lease.Slot;
        using var job = cancellations.Enter(unit.JobId, unit.DispatchedAt);
        // The whole unit is this slot's from here: heartbeats name its items, so if this worker falls silent while its
        // broker connection stays open (and the broker never hands the unit to anyone else) the coordinator knows
        // which queued items to place again.
        var held = unit.Items.Select(i => i.ItemId).ToArray();
        slot.Begin(held);
        var packed = new List<PackedImage>();
        var reports = new UnitReports(context, _policy.UnitReports, _policy.ReportWindow, time);
        try
        {
            foreach (var items in RenderBatch.Plan(unit.Items, _policy.MaxBatchSize))
            {
                if (job.Token.IsCancellationRequested)
                {
                    LogCanceled(unit.WorkUnitId, unit.JobId);
                    break;
                }

                var batchStarted = time.GetTimestamp();
                await RenderBatchAsync(context, slot, unit, items, packed, reports, job.Token);
                await reports.BatchDoneAsync(time.GetElapsedTime(batchStarted), context.CancellationToken);
            }

            if (packed.Count > 0 && !job.Token.IsCancellationRequested)
            {
                await UploadPartsAsync(context, slot, unit, packed, reports);
            }

            await reports.FlushAsync(context.CancellationToken);
        }
        catch when (reports.Held > 0)
        {
            // The unit is abandoned (shutdown past its grace, a broker fault) with images stored but unreported:
            // report them while we still can, so a redelivery finds them done rather than rendering them again.
            await TryFlushAsync(reports, unit);
            throw;
        }
        finally
        {
            slot.End(held);
            if (lifecycle.IsDraining)
            {
                await SendFinalHeartbeatAsync(context, slot);
            }
        }
    }

    private async Task TryFlushAsync(UnitReports reports, RenderWorkUnit unit)
    {
        using var timeout = new CancellationTokenSource(FinalHeartbeatTimeout, time);
        try
        {
            await reports.FlushAsync(timeout.Token);
        }
        catch (Exception ex)
        {
            // Not lost: their items' leases lapse and the coordinator places them again.
            LogReportsNotSent(ex, reports.Held, unit.WorkUnitId);
        }
    }

    /// <summary>A rendered image of a WebDataset job, held until the unit's tar parts are uploaded.</summary>
    private sealed record PackedImage(RenderItem Item, byte[] Png, string Sha256, string? ModelHash, string? Safety, TimeSpan Elapsed);

    /// <summary>
    /// Uploads the unit's WebDataset images as one tar part per shard (one store write for the unit's images rather
    /// than one each) under a name no other delivery of the unit uses, and only then reports each image. A worker
    /// killed before this loses only unreported renders, which the coordinator places again; a second delivery
    /// writes its own part, and the ledger keeps whichever report came first.
    /// </summary>
    private async Task UploadPartsAsync(ConsumeContext context, WorkerSlot slot, RenderWorkUnit unit, List<PackedImage> packed, UnitReports reports)
    {
        var consumeToken = context.CancellationToken;
        foreach (var part in packed.GroupBy(p => p.Item.Pack!.PartPrefix, StringComparer.Ordinal))
        {
            var key = $"{part.Key}{unit.WorkUnitId:N}-{Guid.NewGuid():N}.tar";
            try
            {
                await storeOutage.ExecuteAsync(async token =>
                {
                    using var tar = new MemoryStream();
                    await using (var writer = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
                    {
                        foreach (var image in part)
                        {
                            await DatasetTar.WriteMemberAsync(writer, image.Item.Pack!.MemberName, image.Png, time.GetUtcNow(), token);
                        }
                    }

                    tar.Position = 0;
                    await store.PutAsync(key, tar, TarContentType, token);
                }, consumeToken);
            }
            catch (Exception ex) when (!consumeToken.IsCancellationRequested)
            {
                LogUploadFailed(ex, part.First().Item.ItemId, key);
                foreach (var image in part)
                {
                    await context.Publish(
                        new ItemFailed(image.Item.ItemId, unit.JobId, image.Item.Attempt, slot.WorkerId, $"Uploading the dataset part '{key}' failed: {ex.Message}", Retryable: true),
                        consumeToken);
                }

                continue;
            }

            foreach (var image in part)
            {
                Rendered(slot, image.Item, image.Elapsed);
                await reports.RenderedAsync(
                    new ItemRendered(image.Item.ItemId, unit.JobId, image.Item.Attempt, key, slot.WorkerId, image.Elapsed, image.Sha256, image.ModelHash, image.Safety),
                    consumeToken);
            }
        }
    }

    private async Task RenderBatchAsync(ConsumeContext context, WorkerSlot slot, RenderWorkUnit unit, IReadOnlyList<RenderItem> items, List<PackedImage> packed, UnitReports reports, CancellationToken jobCanceled)
    {
        var jobId = unit.JobId;
        var consumeToken = context.CancellationToken;
        var startedAt = time.GetUtcNow();
        var started = time.GetTimestamp();
        await reports.StartedAsync([.. items.Select(item => new ItemStarted(item.ItemId, jobId, item.Attempt, slot.WorkerId, startedAt))], consumeToken);

        var ids = items.Select(i => i.ItemId).ToArray();
        var reported = new HashSet<Guid>();
        // One span per batch (a child of MassTransit's consume span, so of the submission's trace); the engine's
        // stage spans and the uploads nest under it.
        using var span = StartRenderSpan(unit, items);
        slot.Begin(ids);
        using var timeout = new CancellationTokenSource(_policy.RenderTimeout, time);
        using var render = CancellationTokenSource.CreateLinkedTokenSource(consumeToken, jobCanceled, timeout.Token);
        try
        {
            if (items[0].Mode == RenderModes.HiresStitch)
            {
                // No engine and no PNG in memory: the stitch streams from the stored tiles into the output key itself.
                string stitchedSha256;
                await using (var rows = new ProgressReporter(context, jobId, items, _policy.MinProgressInterval, _policy.PreviewInterval, time, logger, consumeToken))
                {
                    stitchedSha256 = await new HiresStitchRenderer(store).StitchAsync(items[0], rows, render.Token);
                    await rows.FlushAsync();
                }

                reported.Add(items[0].ItemId);
                Rendered(slot, items[0], time.GetElapsedTime(started));
                await reports.RenderedAsync(
                    new ItemRendered(items[0].ItemId, jobId, items[0].Attempt, items[0].OutputKey, slot.WorkerId, time.GetElapsedTime(started), stitchedSha256),
                    consumeToken);
                return;
            }

            var batch = await LoadInputsAsync(items, render.Token) with { Safety = unit.Safety, Watermark = unit.Watermark };
            IReadOnlyList<RenderedImage> images;
            await using (var progress = new ProgressReporter(context, jobId, items, _policy.MinProgressInterval, _policy.PreviewInterval, time, logger, consumeToken))
            {
                var counted = new StepCounter(progress);
                try
                {
                    images = await slot.Renderer.RenderAsync(batch, counted, render.Token);
                }
                finally
                {
                    metrics.DenoiseSteps(slot.WorkerId, counted.Steps * items.Count);
                    span?.SetTag(RenderFarmTags.Strategy, slot.Renderer.MemoryStrategy);
                }

                await progress.FlushAsync();
            }

            foreach (var image in images)
            {
                if (jobCanceled.IsCancellationRequested)
                {
                    LogCanceled(unit.WorkUnitId, jobId);
                    return;
                }

                var item = items.First(i => i.ItemId == image.ItemId);
                if (image.Blocked)
                {
                    // Never stored, so never shown: the item ends with the checker's reason, and another attempt
                    // with the same seed would be blocked again.
                    reported.Add(item.ItemId);
                    await context.Publish(
                        new ItemFailed(item.ItemId, jobId, item.Attempt, slot.WorkerId, "Blocked by the model's safety checker (safety: block); the image was not stored.", Retryable: false),
                        consumeToken);
                    continue;
                }

                if (item.Pack is not null)
                {
                    // Reported once its tar part is stored (UploadPartsAsync); a failure of a later batch leaves it be.
                    reported.Add(item.ItemId);
                    packed.Add(new PackedImage(item, image.Png, PngHash.Sha256Hex(image.Png), image.ModelHash, image.Safety, time.GetElapsedTime(started)));
                    continue;
                }

                try
                {
                    // An unreachable store is waited out here (StoreOutage), not reported as the item's failure.
                    await storeOutage.ExecuteAsync(async token =>
                    {
                        using var content = new MemoryStream(image.Png, writable: false);
                        await store.PutAsync(item.OutputKey, content, PngContentType, token);
                    }, consumeToken);
                }
                catch (Exception ex) when (!consumeToken.IsCancellationRequested)
                {
                    reported.Add(item.ItemId);
                    LogUploadFailed(ex, item.ItemId, item.OutputKey);
                    await context.Publish(
                        new ItemFailed(item.ItemId, jobId, item.Attempt, slot.WorkerId, $"Uploading the image to '{item.OutputKey}' failed: {ex.Message}", Retryable: true),
                        consumeToken);
                    continue;
                }

                // Only now: a completion must never point at an image that is not stored yet.
                reported.Add(item.ItemId);
                Rendered(slot, item, time.GetElapsedTime(started));
                await reports.RenderedAsync(
                    new ItemRendered(item.ItemId, jobId, item.Attempt, item.OutputKey, slot.WorkerId, time.GetElapsedTime(started), PngHash.Sha256Hex(image.Png), image.ModelHash, image.Safety),
                    consumeToken);
            }
        }
        catch (OperationCanceledException) when (consumeToken.IsCancellationRequested)
        {
            // Shutdown past its grace (or a lost broker connection): leave the unit unacknowledged for redelivery.
            LogAbandoned(jobId, slot.WorkerId);
            throw;
        }
        catch (OperationCanceledException) when (jobCanceled.IsCancellationRequested)
        {
            LogCanceled(unit.WorkUnitId, jobId);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            await FailAsync(context, slot, jobId, items, reported, $"Rendering took longer than {_policy.RenderTimeout}; the item will be retried.", retryable: true);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            var (reason, retryable) = Classify(ex);
            LogRenderFailed(ex, jobId, slot.WorkerId, retryable);
            await FailAsync(context, slot, jobId, items, reported, reason, retryable);
        }
        finally
        {
            slot.End(ids);
        }
    }

    private static Activity? StartRenderSpan(RenderWorkUnit unit, IReadOnlyList<RenderItem> items)
    {
        var span = RenderFarmDiagnostics.WorkerActivitySource.StartActivity("render");
        if (span is not null)
        {
            var first = items[0];
            span.SetTag(RenderFarmTags.JobId, unit.JobId.ToString());
            span.SetTag(RenderFarmTags.ItemIndex, first.Index);
            span.SetTag(RenderFarmTags.ItemCount, items.Count);
            span.SetTag(RenderFarmTags.Model, first.Model);
            span.SetTag(RenderFarmTags.Mode, first.Mode);
            span.SetTag(RenderFarmTags.Size, RenderFarmTags.SizeOf(first.Width, first.Height));
            span.SetTag(RenderFarmTags.Sampler, first.Sampler);
        }

        return span;
    }

    private void Rendered(WorkerSlot slot, RenderItem item, TimeSpan duration) =>
        metrics.Rendered(slot.WorkerId, item.Model, item.Width, item.Height, item.Sampler, duration);

    /// <summary>Passes steps on and counts them: each report is one denoising step of the whole batch.</summary>
    private sealed class StepCounter(IProgress<RenderStep> inner) : IProgress<RenderStep>
    {
        private int _steps;

        public int Steps => Volatile.Read(ref _steps);

        public void Report(RenderStep value)
        {
            Interlocked.Increment(ref _steps);
            inner.Report(value);
        }
    }

    /// <summary>The batch with its init image and mask fetched from the store; a missing one fails the items for good.</summary>
    private async Task<RenderBatch> LoadInputsAsync(IReadOnlyList<RenderItem> items, CancellationToken cancellationToken)
    {
        var first = items[0];
        if (first.Mode == RenderModes.Txt2Img)
        {
            return new RenderBatch(items);
        }

        if (first.Mode == RenderModes.HiresTile)
        {
            // The tile's input is the job's base render: missing, it fails retryable (HiresInputMissingException).
            var baseKey = first.Hires?.BaseImageKey ?? throw new ArgumentException("A hires-tile item needs its base image key (RenderItem.Hires.BaseImageKey).");
            return new RenderBatch(items, await HiresArtifacts.ReadAsync(store, baseKey, "base image", cancellationToken));
        }

        var init = first.InitImageKey is { } initKey ? await ReadInputAsync(initKey, "init image", cancellationToken) : (ReadOnlyMemory<byte>?)null;
        var mask = first.MaskKey is { } maskKey ? await ReadInputAsync(maskKey, "mask", cancellationToken) : (ReadOnlyMemory<byte>?)null;
        return new RenderBatch(items, init, mask);
    }

    private async Task<ReadOnlyMemory<byte>> ReadInputAsync(string key, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await storeOutage.ExecuteAsync(async token => (ReadOnlyMemory<byte>)await store.ReadAllBytesAsync(key, token), cancellationToken);
        }
        catch (ArtifactNotFoundException ex)
        {
            throw new ArgumentException($"The {what} '{key}' is not in the artifact store.", ex);
        }
    }

    private async Task FailAsync(ConsumeContext context, WorkerSlot slot, Guid jobId, IReadOnlyList<RenderItem> items, HashSet<Guid> reported, string reason, bool retryable)
    {
        foreach (var item in items.Where(i => !reported.Contains(i.ItemId)))
        {
            reported.Add(item.ItemId);
            await context.Publish(new ItemFailed(item.ItemId, jobId, item.Attempt, slot.WorkerId, reason, retryable), context.CancellationToken);
        }
    }

    /// <summary>
    /// Bad input and unknown models fail the same way on every attempt; anything else (out of memory, a device or
    /// storage fault) may pass on another try or another worker.
    /// </summary>
    internal static (string Reason, bool Retryable) Classify(Exception exception) => exception switch
    {
        ModelNotFoundException or ModelFormatException => (exception.Message, false),
        ArgumentException => (exception.Message, false),
        // Refused by the planner before anything ran: this worker's budget cannot hold it on any attempt. (Refused
        // mid-run by the capped arena, with ONNX Runtime's error inside, it may fit once other slots are done.)
        MemoryBudgetExceededException { InnerException: null } => (exception.Message, false),
        HiresInputMissingException => (exception.Message, true),
        OutOfMemoryException => ("The worker ran out of memory rendering this item.", true),
        _ => ($"{exception.GetType().Name}: {exception.Message}", true),
    };

    private async Task SendFinalHeartbeatAsync(ConsumeContext context, WorkerSlot slot)
    {
        // The consume token may already be canceled (grace expired); the Draining beat must still go out.
        using var timeout = new CancellationTokenSource(FinalHeartbeatTimeout, time);
        try
        {
            await heartbeats.PublishAsync(slot, context, timeout.Token);
        }
        catch (Exception ex)
        {
            LogFinalHeartbeatFailed(ex, slot.WorkerId);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Unit {WorkUnitId} of canceled job {JobId} acknowledged without rendering")]
    private partial void LogSkippedCanceled(Guid workUnitId, Guid jobId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopped unit {WorkUnitId}: job {JobId} was canceled")]
    private partial void LogCanceled(Guid workUnitId, Guid jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Abandoned a unit of job {JobId} on {WorkerId} at shutdown; the broker will redeliver it")]
    private partial void LogAbandoned(Guid jobId, string workerId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Render of job {JobId} failed on {WorkerId} (retryable: {Retryable})")]
    private partial void LogRenderFailed(Exception exception, Guid jobId, string workerId, bool retryable);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upload of item {ItemId} to {Key} failed")]
    private partial void LogUploadFailed(Exception exception, Guid itemId, string key);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} stored images of unit {WorkUnitId} were not reported; their items will be placed again")]
    private partial void LogReportsNotSent(Exception exception, int count, Guid workUnitId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Final heartbeat of {WorkerId} was not sent")]
    private partial void LogFinalHeartbeatFailed(Exception exception, string workerId);
}
