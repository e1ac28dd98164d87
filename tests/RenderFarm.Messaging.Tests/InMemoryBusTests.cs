using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;

namespace RenderFarm.Messaging.Tests;

public sealed class InMemoryBusTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private static Task<BusHost> StartInMemory() => BusHost.StartAsync(new Dictionary<string, string?>
    {
        ["Bus:Transport"] = "InMemory",
    });

    [Fact]
    public async Task A_work_unit_sent_to_the_render_queue_is_consumed_with_its_wire_name_in_the_envelope()
    {
        await using var host = await StartInMemory();
        var unit = Samples.WorkUnit();

        var endpoint = await host.Bus.GetSendEndpoint(QueueNames.RenderAddress);
        await endpoint.Send(unit);

        var received = await host.Inbox.WaitFor<RenderWorkUnit>(m => m.WorkUnitId == unit.WorkUnitId, Timeout);
        received.Message.Items.Single().ItemId.ShouldBe(unit.Items[0].ItemId);
        received.EnvelopeMessageTypes.ShouldBe([MessageNames.RenderWorkUnit]);
    }

    [Fact]
    public async Task A_published_event_travels_through_the_exchange_named_by_its_wire_name()
    {
        await using var host = await StartInMemory();
        var rendered = Samples.Rendered();

        await host.Bus.Publish(rendered);

        var received = await host.Inbox.WaitFor<ItemRendered>(m => m.ItemId == rendered.ItemId, Timeout);
        received.EnvelopeMessageTypes.ShouldBe([MessageNames.ItemRendered]);
        received.DestinationAddress.ShouldNotBeNull().AbsolutePath.Trim('/').ShouldBe("RenderFarm:ItemRendered:v1");
    }

    [Fact]
    public void Every_contract_gets_its_entity_name_from_its_wire_name_not_its_class_name()
    {
        foreach (var (type, wireName) in MessageNames.ByType)
        {
            WireNames.TryGetEntityName(type, out var entityName).ShouldBeTrue();
            entityName.ShouldBe(wireName["urn:message:".Length..]);
            entityName.ShouldNotContain(type.Namespace!);
        }
    }

    [Fact]
    public async Task Rabbit_transport_with_a_uri_that_is_not_amqp_fails_at_start_naming_the_setting()
    {
        var settings = new Dictionary<string, string?> { ["Bus:Transport"] = "RabbitMq", ["Bus:RabbitMq"] = "http://not-amqp/" };

        var failure = await Should.ThrowAsync<OptionsValidationException>(() => BusHost.StartAsync(settings));

        failure.Message.ShouldContain("Bus:RabbitMq");
    }

    [Fact]
    public void Consumer_endpoints_get_kebab_case_names_with_the_farm_prefix()
    {
        var services = new ServiceCollection();
        services.AddRenderFarmBus(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build(), _ => { });
        using var provider = services.BuildServiceProvider();

        var formatter = provider.GetRequiredService<IEndpointNameFormatter>();

        formatter.Consumer<ItemRenderedProbe>().ShouldBe("renderfarm-item-rendered-probe");
    }
}
