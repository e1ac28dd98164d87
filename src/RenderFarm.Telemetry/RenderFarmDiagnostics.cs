using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace RenderFarm.Telemetry;

/// <summary>
/// Names of the farm's own <see cref="ActivitySource"/>s and <see cref="Meter"/>s, and the shared instances hosts
/// record with. <see cref="TelemetryExtensions.AddRenderFarmTelemetry"/> subscribes to every name here.
/// </summary>
/// <remarks>
/// The engine (<c>RenderFarm.Diffusion</c>) knows nothing of the farm and does not reference this assembly; it
/// creates its own source and meter under <see cref="Engine"/>, the same name, so hosts still export them.
/// </remarks>
public static class RenderFarmDiagnostics
{
    /// <summary>Activity source and meter name of the coordinator (API, dispatch, leases).</summary>
    public const string Coordinator = "RenderFarm.Coordinator";

    /// <summary>Activity source and meter name of the worker (placement, render consumers, heartbeats).</summary>
    public const string Worker = "RenderFarm.Worker";

    /// <summary>Activity source and meter name of the diffusion engine.</summary>
    public const string Engine = "RenderFarm.Engine";

    /// <summary>Activity source and meter name of the artifact store (<c>RenderFarm.Storage</c> declares its own, same name).</summary>
    public const string Storage = "RenderFarm.Storage";

    /// <summary>Activity source and meter name MassTransit uses for its built-in instrumentation.</summary>
    public const string MassTransit = "MassTransit";

    /// <summary>Every farm source and meter name, for hosts that subscribe in one call.</summary>
    public static IReadOnlyList<string> All { get; } = [Coordinator, Worker, Engine, Storage];

    /// <summary>Spans of the coordinator.</summary>
    public static ActivitySource CoordinatorActivitySource { get; } = new(Coordinator);

    /// <summary>Instruments of the coordinator.</summary>
    public static Meter CoordinatorMeter { get; } = new(Coordinator);

    /// <summary>Spans of the worker.</summary>
    public static ActivitySource WorkerActivitySource { get; } = new(Worker);

    /// <summary>Instruments of the worker.</summary>
    public static Meter WorkerMeter { get; } = new(Worker);

    /// <summary>Spans a host records around engine calls (the engine's own spans use its own instance of the same name).</summary>
    public static ActivitySource EngineActivitySource { get; } = new(Engine);

    /// <summary>Instruments a host records around engine calls.</summary>
    public static Meter EngineMeter { get; } = new(Engine);
}
