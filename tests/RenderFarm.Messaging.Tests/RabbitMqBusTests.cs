using MassTransit;
using System.Net;
using RenderFarm.Contracts;

namespace RenderFarm.Messaging.Tests;

public sealed class RabbitMqBusTests(RabbitMqBroker broker) : IClassFixture<RabbitMqBroker>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private Task<BusHost> StartOnRabbit() => BusHost.StartAsync(new Dictionary<string, string?>
    {
        ["Bus:Transport"] = "RabbitMq",
        ["Bus:RabbitMq"] = broker.Amqp.ToString(),
    });

    [Fact]
    public async Task A_work_unit_makes_the_round_trip_through_the_render_queue_on_RabbitMQ()
    {
        await using var host = await StartOnRabbit();
        var unit = Samples.WorkUnit();

        var endpoint = await host.Bus.GetSendEndpoint(QueueNames.RenderAddress);
        await endpoint.Send(unit);

        var received = await host.Inbox.WaitFor<RenderWorkUnit>(m => m.WorkUnitId == unit.WorkUnitId, Timeout);
        received.Message.JobId.ShouldBe(unit.JobId);
        received.Message.Items.ShouldBe(unit.Items);
        received.EnvelopeMessageTypes.ShouldBe([MessageNames.RenderWorkUnit]);
    }

    [Fact]
    public async Task A_published_event_reaches_its_consumer_through_the_exchange_named_by_its_wire_name()
    {
        await using var host = await StartOnRabbit();
        var rendered = Samples.Rendered();

        await host.Bus.Publish(rendered);

        var received = await host.Inbox.WaitFor<ItemRendered>(m => m.ItemId == rendered.ItemId, Timeout);
        received.EnvelopeMessageTypes.ShouldBe([MessageNames.ItemRendered]);
        (await broker.ExchangeStatus("RenderFarm:ItemRendered:v1")).ShouldBe(HttpStatusCode.OK);
        (await broker.ExchangeStatus("RenderFarm.Contracts:ItemRendered")).ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_preview_makes_the_round_trip_on_RabbitMQ_with_its_image_bytes_intact_under_its_wire_name()
    {
        await using var host = await StartOnRabbit();
        var preview = Samples.Previewed();

        await host.Bus.Publish(preview, context => context.TimeToLive = TimeSpan.FromSeconds(30));

        var received = await host.Inbox.WaitFor<ItemPreviewed>(m => m.ItemId == preview.ItemId, Timeout);
        received.EnvelopeMessageTypes.ShouldBe([MessageNames.ItemPreviewed]);
        received.Message.Image.ShouldBe(preview.Image);
        received.Message.ShouldBe(preview with { Image = received.Message.Image });
        (await broker.ExchangeStatus("RenderFarm:ItemPreviewed:v1")).ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task An_envelope_that_names_only_the_wire_name_is_consumed_as_the_contract_type()
    {
        await using var host = await StartOnRabbit();
        var itemId = Guid.NewGuid();
        // What a producer that knows only MessageNames (another language, a renamed class) puts on the wire.
        var envelope = $$"""
            {
              "messageId": "{{Guid.NewGuid()}}",
              "messageType": ["{{MessageNames.ItemRendered}}"],
              "message": {
                "itemId": "{{itemId}}", "jobId": "{{Guid.NewGuid()}}", "attempt": 2,
                "artifactKey": "jobs/y/1.png", "workerId": "worker-9", "elapsed": "00:00:04"
              }
            }
            """;

        await broker.PublishRaw(WireNames.ToEntityName(MessageNames.ItemRendered), "application/vnd.masstransit+json", envelope);

        var received = await host.Inbox.WaitFor<ItemRendered>(m => m.ItemId == itemId, Timeout);
        received.Message.Attempt.ShouldBe(2);
        received.Message.Elapsed.ShouldBe(TimeSpan.FromSeconds(4));
    }
}
