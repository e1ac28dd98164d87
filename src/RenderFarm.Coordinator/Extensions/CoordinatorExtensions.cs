using System.Text.Json.Serialization;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using RenderFarm.Coordinator.Apis;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Automatic1111;
using RenderFarm.Coordinator.Consumers;
using RenderFarm.Coordinator.Datasets;
using RenderFarm.Coordinator.DeadLetters;
using RenderFarm.Coordinator.Dispatch;
using RenderFarm.Coordinator.Events;
using RenderFarm.Coordinator.Jobs;
using RenderFarm.Coordinator.Leases;
using RenderFarm.Coordinator.Monitoring;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Coordinator.Placement;
using RenderFarm.Coordinator.Previews;
using RenderFarm.Coordinator.Retention;
using RenderFarm.Coordinator.Datasets.ShardAssembler;
using RenderFarm.Coordinator.Progress;
using RenderFarm.Coordinator.RequestLimits;
using RenderFarm.Coordinator.Telemetry;
using RenderFarm.Messaging;
using RenderFarm.Storage;
using RenderFarm.Telemetry;
using Scalar.AspNetCore;

namespace RenderFarm.Coordinator.Extensions;

/// <summary>
/// The coordinator's whole composition, in two calls, so the distributed host (<c>Program</c>) and the embedded
/// farm (<c>renderfarm serve</c>) build the same coordinator with different configuration.
/// </summary>
/// <remarks>
/// Configuration keys:
/// <list type="bullet">
/// <item><c>Database:Provider</c> = <c>Postgres</c> (default; connection string <c>ConnectionStrings:RenderFarm</c> or
/// <c>RENDERFARM_POSTGRES</c>) | <c>Sqlite</c> (<c>Database:SqlitePath</c>, default <c>renderfarm.db</c>);
/// <c>Database:MigrateOnStart</c> (default true).</item>
/// <item><c>Bus:*</c> (<see cref="BusOptions"/>: <c>Transport</c> = RabbitMq | InMemory, <c>RabbitMq</c> or
/// <c>RENDERFARM_RABBITMQ</c>, <c>PrefetchCount</c>) and <c>Storage:*</c> (<see cref="StorageOptions"/>,
/// <c>RENDERFARM_S3_*</c>).</item>
/// <item><c>Coordinator:*</c> (<see cref="CoordinatorOptions"/>: <c>Models</c>, <c>MaxPixels</c>, <c>MaxCount</c>,
/// <c>MaxSweepItems</c>, <c>MaxPromptLength</c>, <c>WorkUnitSize</c>, <c>InsertPageSize</c>, <c>HeartbeatInterval</c>,
/// <c>LeaseDuration</c>, <c>MaxAttempts</c>, <c>InitialBackoff</c>, <c>BackoffMultiplier</c>, <c>MaxBackoff</c>),
/// <c>Coordinator:Dispatcher:*</c> (<c>BatchSize</c>, <c>PollInterval</c>), <c>Coordinator:Rescuer:*</c>
/// (<c>Interval</c>, <c>BatchSize</c>), <c>Coordinator:Progress:*</c> (<c>FlushInterval</c>, <c>MaxPending</c>),
/// <c>Coordinator:Previews:*</c> (<c>MaxItems</c>, <c>MaxBytes</c>, <c>MaxAge</c>),
/// <c>Coordinator:Auth:RequireApiKeys</c> (default true; <see cref="AuthOptions"/>),
/// <c>Coordinator:Automatic1111:*</c> (<c>WaitTimeout</c>, <c>PollInterval</c>), <c>Coordinator:Metrics:RefreshInterval</c>.</item>
/// </list>
/// </remarks>
public static class CoordinatorExtensions
{
    /// <summary>Adds the coordinator's services: options, database, bus consumers, storage, background services, OpenAPI.</summary>
    public static IHostApplicationBuilder AddCoordinator(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var configuration = builder.Configuration;

        AddOptions<CoordinatorOptions, CoordinatorOptionsValidator>(services, CoordinatorOptions.SectionName);
        AddOptions<OutboxDispatcherOptions, BackgroundOptionsValidator>(services, OutboxDispatcherOptions.SectionName);
        AddOptions<LeaseRescuerOptions, BackgroundOptionsValidator>(services, LeaseRescuerOptions.SectionName);
        AddOptions<ProgressOptions, BackgroundOptionsValidator>(services, ProgressOptions.SectionName);
        AddOptions<Automatic1111Options, Automatic1111OptionsValidator>(services, Automatic1111Options.SectionName);
        AddOptions<PreviewOptions, PreviewOptionsValidator>(services, PreviewOptions.SectionName);
        AddOptions<MetricsOptions, BackgroundOptionsValidator>(services, MetricsOptions.SectionName);
        AddOptions<RetentionOptions, RetentionOptionsValidator>(services, RetentionOptions.SectionName);
        AddOptions<ShardAssemblerOptions, ShardAssemblerOptionsValidator>(services, ShardAssemblerOptions.SectionName);
        services.AddOptions<DatabaseOptions>()
            .BindConfiguration(DatabaseOptions.SectionName)
            .PostConfigure(o => o.ConnectionString ??= configuration.GetConnectionString(DatabaseOptions.ConnectionStringName)
                ?? configuration[DatabaseOptions.PostgresEnvironmentVariable]
                ?? Environment.GetEnvironmentVariable(DatabaseOptions.PostgresEnvironmentVariable))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<DatabaseOptions>, DatabaseOptionsValidator>();
        services.TryAddSingleton(TimeProvider.System);

        // The provider picks the context type (and with it the migration set), so it is read now.
        var provider = configuration.GetSection(DatabaseOptions.SectionName).GetValue(nameof(DatabaseOptions.Provider), DatabaseProvider.Postgres);
        if (provider == DatabaseProvider.Sqlite)
        {
            services.AddDbContextPool<CoordinatorDbContext, SqliteCoordinatorDbContext>((sp, db) =>
                db.UseSqlite($"Data Source={sp.GetRequiredService<IOptions<DatabaseOptions>>().Value.SqlitePath}"));
            services.AddSingleton<IDatabaseDialect, SqliteDialect>();
        }
        else
        {
            services.AddDbContextPool<CoordinatorDbContext, PostgresCoordinatorDbContext>((sp, db) =>
                db.UseNpgsql(sp.GetRequiredService<IOptions<DatabaseOptions>>().Value.ConnectionString));
            services.AddSingleton<IDatabaseDialect, PostgresDialect>();
        }

        services.AddRenderFarmStorage(configuration);
        services.AddRenderFarmBus(configuration, bus =>
        {
            bus.AddConsumer<ItemStartedConsumer>(LedgerBatches.Configure);
            bus.AddConsumer<ItemsStartedConsumer>(LedgerBatches.Configure);
            bus.AddConsumer<ItemProgressedConsumer>();
            bus.AddConsumer<ItemPreviewedConsumer>();
            bus.AddConsumer<ItemRenderedConsumer>(LedgerBatches.Configure);
            bus.AddConsumer<ItemsRenderedConsumer>(LedgerBatches.Configure);
            bus.AddConsumer<ItemFailedConsumer>(DatabaseOutageRetry.Configure);
            bus.AddConsumer<WorkerHeartbeatConsumer>(DatabaseOutageRetry.Configure);
        });

        services.AddMetrics();
        services.AddSingleton<CoordinatorMetrics>();
        services.AddSingleton<JobEventHub>();
        services.AddSingleton<OutboxSignal>();
        services.AddSingleton<DatabaseOutageWatch>();
        services.AddSingleton<ProgressTracker>();
        services.AddSingleton(sp =>
        {
            var hub = sp.GetRequiredService<JobEventHub>();
            var previews = ActivatorUtilities.CreateInstance<PreviewStore>(sp, hub);
            hub.AddObserver(previews);
            return previews;
        });
        services.AddScoped<ItemLedger>();
        services.AddScoped<JobSubmission>();
        services.AddScoped<PlacementAdmission>();
        services.AddScoped<JobCancellation>();
        services.AddScoped<JobRetry>();
        services.AddScoped<JobDeletion>();
        services.AddScoped<HiresPartsCleanup>();
        services.AddScoped<JobManifest>();
        services.AddScoped<IJobInputs, ArtifactJobInputs>();
        services.AddScoped<IMonitoringApi, MonitoringApi>();
        services.AddSingleton<Automatic1111Tasks>();
        services.AddScoped<Automatic1111Checkpoint>();
        services.AddScoped<Automatic1111Runner>();
        services.AddHttpClient<RabbitMqDeadLetters>(http => http.Timeout = TimeSpan.FromSeconds(15));

        // Hosted services start in registration order: the schema exists before anything reads it.
        services.Insert(0, ServiceDescriptor.Singleton<IHostedService, DatabaseMigrationService>());
        services.AddHostedService<OutboxDispatcher>();
        services.AddHostedService<LeaseRescuer>();
        services.AddHostedService<RetentionService>();
        services.AddSingleton<ShardAssembler>();
        services.AddHostedService(sp => sp.GetRequiredService<ShardAssembler>());
        services.AddHostedService<ProgressFlusher>();
        services.AddHostedService<FarmSnapshotService>();

        builder.AddRenderFarmHealthChecks().AddDbContextCheck<CoordinatorDbContext>("database");
        services.AddRequestLimits();
        services.AddFarmAuth();

        // A query or route value that does not bind (limit=NaN, after=1e400) is the client's fault: minimal APIs throw
        // BadHttpRequestException naming the parameter (in every environment, not only Development), the exception
        // handler answers with its 400 status, and the ProblemDetails carries its message so the bad field is named.
        services.Configure<RouteHandlerOptions>(routes => routes.ThrowOnBadRequest = true);
        services.Configure<ExceptionHandlerOptions>(handler => handler.StatusCodeSelector = ex =>
            ex is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError);
        services.AddProblemDetails(problems => problems.CustomizeProblemDetails = context =>
        {
            if (context.Exception is BadHttpRequestException bad)
            {
                context.ProblemDetails.Detail = bad.Message;
            }
        });
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.Converters.Add(new JsonStringEnumConverter()));
        services.AddOpenApi();
        return builder;
    }

    /// <summary>Maps the HTTP API (<c>/v1/jobs</c> with items' previews, <c>/v1/images</c>, <c>/v1/workers</c>, <c>/v1/monitoring</c>, the AUTOMATIC1111-compatible <c>/sdapi/v1</c>), the OpenAPI document (<c>/openapi/v1.json</c>) and Scalar (<c>/scalar</c>).</summary>
    public static WebApplication MapCoordinatorApi(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseRequestBodyLimit();
        app.UseFarmAuth();

        // The API's description holds no farm data, and clients read it to learn how to send their key.
        app.MapOpenApi().AllowAnonymous();
        app.MapScalarApiReference().AllowAnonymous();
        app.MapJobsApi();
        app.MapPreviewsApi();
        app.MapImagesApi();
        app.MapWorkersApi();
        app.MapMonitoringApi();
        app.MapAutomatic1111Api();
        app.MapDeadLettersApi();
        app.MapRetentionApi();
        app.MapDatasetsApi();
        return app;
    }

    private static void AddOptions<TOptions, TValidator>(IServiceCollection services, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>().BindConfiguration(section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
    }
}
