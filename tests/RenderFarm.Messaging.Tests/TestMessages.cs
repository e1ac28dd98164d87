using System.Collections.Concurrent;
using System.Text.Json;
using MassTransit;
using RenderFarm.Contracts;

namespace RenderFarm.Messaging.Tests;

/// <summary>What a probe consumer saw: the message and the raw envelope as it arrived on the transport.</summary>
internal sealed record Received<T>(T Message, string[] EnvelopeMessageTypes, Uri? DestinationAddress);

/// <summary>Collects consumed messages so a test can await one by predicate.</summary>
internal sealed class Inbox
{
    private readonly ConcurrentQueue<object> _received = new();
    private readonly SemaphoreSlim _signal = new(0);

    public void Add(object received)
    {
        _received.Enqueue(received);
        _signal.Release();
    }

    public async Task<Received<T>> WaitFor<T>(Func<T, bool> match, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            var hit = _received.OfType<Received<T>>().FirstOrDefault(r => match(r.Message));
            if (hit is not null)
                return hit;
            try
            {
                await _signal.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No {typeof(T).Name} arrived within {timeout}.");
            }
        }
    }

    public static Received<T> Capture<T>(ConsumeContext<T> context)
        where T : class
    {
        using var envelope = JsonDocument.Parse(context.ReceiveContext.Body.GetBytes());
        var types = envelope.RootElement.GetProperty("messageType").EnumerateArray().Select(e => e.GetString()!).ToArray();
        return new Received<T>(context.Message, types, context.DestinationAddress);
    }
}

internal sealed class RenderWorkUnitProbe(Inbox inbox) : IConsumer<RenderWorkUnit>
{
    public Task Consume(ConsumeContext<RenderWorkUnit> context)
    {
        inbox.Add(Inbox.Capture(context));
        return Task.CompletedTask;
    }
}

internal sealed class ItemRenderedProbe(Inbox inbox) : IConsumer<ItemRendered>
{
    public Task Consume(ConsumeContext<ItemRendered> context)
    {
        inbox.Add(Inbox.Capture(context));
        return Task.CompletedTask;
    }
}

internal sealed class ItemPreviewedProbe(Inbox inbox) : IConsumer<ItemPreviewed>
{
    public Task Consume(ConsumeContext<ItemPreviewed> context)
    {
        inbox.Add(Inbox.Capture(context));
        return Task.CompletedTask;
    }
}

internal static class Samples
{
    /// <summary>A preview as workers send it: a few hundred bytes of JPEG (here the bytes only need to survive the trip).</summary>
    public static ItemPreviewed Previewed() =>
        new(Guid.NewGuid(), Guid.NewGuid(), 2, 17, 5, 40, "image/jpeg", [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 0x4A, 0x46, 0xFF, 0xD9], 64, 48, DateTimeOffset.UtcNow);

    public static RenderWorkUnit WorkUnit() => new(
        Guid.NewGuid(),
        Guid.NewGuid(),
        [
            new RenderItem(Guid.NewGuid(), 1, 0, 42, "a lighthouse at dusk", "", 512, 512, 20, 7.5, "euler_a",
                "sd15", RenderModes.Txt2Img, null, null, null, "jobs/x/0.png"),
        ]);

    public static ItemRendered Rendered() =>
        new(Guid.NewGuid(), Guid.NewGuid(), 1, "jobs/x/0.png", "worker-1", TimeSpan.FromSeconds(3));
}
