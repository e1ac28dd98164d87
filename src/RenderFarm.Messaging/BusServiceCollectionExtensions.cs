using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace RenderFarm.Messaging;

/// <summary>Registers the farm's MassTransit bus: one wiring for the coordinator, the workers and the embedded farm.</summary>
public static class BusServiceCollectionExtensions
{
    /// <summary>How long a host waits for the bus to connect and bind its endpoints before start fails.</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How long a host waits on shutdown for consumers in flight before the bus stops regardless.</summary>
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Adds MassTransit on the transport chosen by <see cref="BusOptions"/> (section <c>Bus</c>), with
    /// System.Text.Json envelopes whose message types and exchange names come from
    /// <see cref="RenderFarm.Contracts.MessageNames"/>, kebab-case endpoint names prefixed with
    /// <see cref="QueueNames.Prefix"/>, and <see cref="RetryDefaults"/> on every endpoint.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configuration">Configuration holding the <c>Bus</c> section (and <c>RENDERFARM_RABBITMQ</c>).</param>
    /// <param name="configureConsumers">Adds the host's consumers (and their definitions); endpoints are configured from them.</param>
    /// <returns>The services, for chaining.</returns>
    public static IServiceCollection AddRenderFarmBus(
        this IServiceCollection services,
        IConfiguration configuration,
        Action<IBusRegistrationConfigurator> configureConsumers)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(configureConsumers);

        var section = configuration.GetSection(BusOptions.SectionName);
        services.AddOptions<BusOptions>()
            .Bind(section)
            .PostConfigure(options =>
            {
                options.RabbitMq ??= UriFromEnvironment(configuration, BusOptions.RabbitMqEnvironmentVariable);
                options.RabbitMqManagement ??= UriFromEnvironment(configuration, BusOptions.RabbitMqManagementEnvironmentVariable);
            })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<BusOptions>, BusOptionsValidator>();

        // A host that reports started has its endpoints bound: otherwise events published during start-up
        // reach exchanges with no queue bound yet and are dropped. A broker that stays unreachable fails the
        // start after StartTimeout instead of leaving a host that looks healthy and moves nothing.
        services.AddOptions<MassTransitHostOptions>().Configure(host =>
        {
            host.WaitUntilStarted = true;
            host.StartTimeout ??= StartTimeout;
            host.StopTimeout ??= StopTimeout;
        });

        // The transport decides which MassTransit registration to call, so it is read now; everything
        // else is read (and validated) from IOptions when the bus is built.
        var transport = section.GetValue<BusTransport>(nameof(BusOptions.Transport), BusTransport.RabbitMq);

        services.AddMassTransit(bus =>
        {
            // MassTransit 8.4+ reports anonymous usage to an outside host after the bus starts. A farm must not phone
            // home (it may run air-gapped, and an operator never agreed to it): off in every host, since every host's
            // bus is built here. MASSTRANSIT_USAGE_TELEMETRY=false is set in the deployments as a second lock.
            bus.DisableUsageTelemetry();
            bus.SetEndpointNameFormatter(new KebabCaseEndpointNameFormatter(QueueNames.Prefix, includeNamespace: false));
            configureConsumers(bus);

            if (transport == BusTransport.InMemory)
            {
                bus.UsingInMemory((context, cfg) =>
                {
                    var options = context.GetRequiredService<IOptions<BusOptions>>().Value;
                    cfg.ConcurrentMessageLimit = options.PrefetchCount;
                    ConfigureCommon(context, cfg);
                });
            }
            else
            {
                bus.UsingRabbitMq((context, cfg) =>
                {
                    var options = context.GetRequiredService<IOptions<BusOptions>>().Value;
                    cfg.Host(options.RabbitMq!);
                    cfg.PrefetchCount = options.PrefetchCount;
                    ConfigureCommon(context, cfg);
                });
            }
        });

        return services;
    }

    private static void ConfigureCommon<TEndpoint>(IBusRegistrationContext context, IBusFactoryConfigurator<TEndpoint> cfg)
        where TEndpoint : IReceiveEndpointConfigurator
    {
        var serializer = new WireNameSerializerFactory();
        cfg.ClearSerialization();
        cfg.AddSerializer(serializer);
        cfg.AddDeserializer(serializer, isDefault: true);

        cfg.MessageTopology.SetEntityNameFormatter(new WireNameEntityNameFormatter(cfg.MessageTopology.EntityNameFormatter));

        cfg.UseMessageRetry(RetryDefaults.Apply);
        cfg.ConfigureEndpoints(context);
    }

    private static Uri? UriFromEnvironment(IConfiguration configuration, string variable)
    {
        var value = configuration[variable] ?? Environment.GetEnvironmentVariable(variable);
        return Uri.TryCreate(value, UriKind.Absolute, out var uri) ? uri : null;
    }
}
