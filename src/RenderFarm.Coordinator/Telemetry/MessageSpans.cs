using System.Diagnostics;
using MassTransit;
using MassTransit.Logging;
using RenderFarm.Telemetry;

namespace RenderFarm.Coordinator.Telemetry;

/// <summary>
/// Spans for what the coordinator records from a worker's message, each a child of the trace the message travelled
/// in. Needed for batch consumers: MassTransit runs a batch in one consume span of its own, so without these the
/// ledger's work for a message would sit outside the trace of the item it completes.
/// </summary>
internal static class MessageSpans
{
    /// <summary>Starts <paramref name="name"/> under the trace in <paramref name="message"/>'s headers, without making it current.</summary>
    public static Activity? Start(string name, ConsumeContext message, Guid jobId, Guid itemId)
    {
        var previous = Activity.Current;
        ActivityContext.TryParse(message.Headers.Get<string>(DiagnosticHeaders.ActivityId), null, out var parent);
        var span = RenderFarmDiagnostics.CoordinatorActivitySource.StartActivity(name, ActivityKind.Internal, parent);
        span?.SetTag(RenderFarmTags.JobId, jobId.ToString());
        span?.SetTag(RenderFarmTags.ItemId, itemId.ToString());
        Activity.Current = previous;
        return span;
    }

    /// <summary>Ends every span, marking them failed when <paramref name="error"/> is set.</summary>
    public static void End(IEnumerable<Activity?> spans, Exception? error = null)
    {
        foreach (var span in spans)
        {
            if (error is not null)
            {
                span?.SetStatus(ActivityStatusCode.Error, error.Message);
            }

            span?.Dispose();
        }
    }
}
