using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Worker.Heartbeats;

namespace RenderFarm.Worker.Memory;

/// <summary>
/// The worker's memory budget, resolved once at start against the device's free memory, and what it means for the
/// default model: the strategy a 512×512 render would use and the largest images that fit (reported in heartbeats
/// so the coordinator places only what fits). One per process: every slot plans with the same budget.
/// </summary>
public sealed partial class WorkerMemory
{
    /// <summary>The size heartbeats describe before a slot has rendered anything.</summary>
    public const int DefaultSide = 512;

    /// <summary>Reported as the strategy when the budget holds no render of the default model at all.</summary>
    public const string NoStrategy = "none";

    private readonly WorkerOptions _options;
    private readonly IDeviceProbe _probe;
    private readonly ILogger<WorkerMemory> _logger;
    private readonly Lazy<long?> _budget;
    private readonly Lock _gate = new();
    private MemoryCapacity? _capacity;
    private bool _profileUnreadableLogged;

    public WorkerMemory(IOptions<WorkerOptions> options, IDeviceProbe probe, ILogger<WorkerMemory> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _probe = probe;
        _logger = logger;
        _budget = new Lazy<long?>(Resolve);
    }

    /// <summary>The budget every render is planned with; null when none is configured (renders run resident).</summary>
    public long? BudgetBytes => _budget.Value;

    /// <summary>The budget heartbeats report: the configured one, else the device's total memory.</summary>
    public long ReportedBudgetBytes(DeviceReport device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return BudgetBytes ?? device.MemoryTotalBytes;
    }

    /// <summary>
    /// What the budget holds of the default model, from its memory profile; <see cref="MemoryCapacity.Unknown"/>
    /// while the model has no profile (e.g. before it is generated or calibrated). Computed once a profile is found.
    /// </summary>
    public MemoryCapacity Capacity(DeviceReport device)
    {
        ArgumentNullException.ThrowIfNull(device);
        lock (_gate)
        {
            if (_capacity is { } known)
            {
                return known;
            }
        }

        var profile = LoadDefaultProfile();
        if (profile is null)
        {
            return MemoryCapacity.Unknown;
        }

        var capacity = Compute(new MemoryPlanner(profile), BudgetBytes, device.MemoryTotalBytes);
        lock (_gate)
        {
            _capacity ??= capacity;
            return _capacity;
        }
    }

    /// <summary>
    /// The capacity of <paramref name="planner"/>'s model under <paramref name="budgetBytes"/>. Without a budget the
    /// engine runs everything resident, so only the resident limit against the device total applies.
    /// </summary>
    public static MemoryCapacity Compute(MemoryPlanner planner, long? budgetBytes, long deviceTotalBytes)
    {
        ArgumentNullException.ThrowIfNull(planner);
        var budget = Math.Max(1, budgetBytes ?? deviceTotalBytes);
        long residentSide = planner.LargestSquare(budget, strategy: MemoryStrategy.Resident);
        if (budgetBytes is null)
        {
            return new MemoryCapacity(MemoryStrategyNames.Resident, residentSide * residentSide, residentSide * residentSide);
        }

        long side = planner.LargestSquare(budget);
        // Before any item: the plan of a 512² render, or of the largest square when even that does not fit.
        var probeSide = (int)Math.Min(DefaultSide, side);
        var strategy = probeSide == 0 ? NoStrategy : Describe(planner.Plan(new RenderShape(probeSide, probeSide), budget).Strategy);
        return new MemoryCapacity(strategy, side * side, residentSide * residentSide);
    }

    /// <summary>Strategy names joined with '+', as heartbeats carry them: <c>resident</c>, <c>sequential+tiled-vae</c>.</summary>
    public static string Describe(MemoryStrategy? strategy) =>
        strategy is null ? NoStrategy : string.Join('+', strategy.Names);

    private MemoryProfile? LoadDefaultProfile()
    {
        try
        {
            return MemoryProfile.TryLoad(Path.Combine(_options.ModelsRoot, _options.DefaultModel));
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            if (!_profileUnreadableLogged)
            {
                _profileUnreadableLogged = true;
                LogProfileUnreadable(ex, _options.DefaultModel);
            }

            return null;
        }
    }

    private long? Resolve()
    {
        MemoryBudgetSetting? setting = _options.BudgetSetting();
        if (setting is null)
        {
            LogNoBudget();
            return null;
        }

        var device = _probe.Probe();
        var bytes = setting.Resolve(device.MemoryFreeBytes);
        LogBudget(ByteSize.Format(bytes), setting.ToString(), device.Name, ByteSize.Format(device.MemoryFreeBytes), ByteSize.Format(device.MemoryTotalBytes));
        return bytes;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Memory budget {Budget} ({Setting}) on {Device} with {Free} free of {Total}")]
    private partial void LogBudget(string budget, string setting, string device, string free, string total);

    [LoggerMessage(Level = LogLevel.Information, Message = "No memory budget: every render runs resident")]
    private partial void LogNoBudget();

    [LoggerMessage(Level = LogLevel.Warning, Message = "The memory profile of {Model} cannot be read; heartbeats report no size limit")]
    private partial void LogProfileUnreadable(Exception exception, string model);
}

/// <summary>What a memory budget holds of one model.</summary>
/// <param name="Strategy">Strategy names of a 512×512 render (joined with '+'), <c>resident</c> when nothing is planned.</param>
/// <param name="MaxPixels">Largest square image (pixels) that fits with any strategy; 0 when unknown.</param>
/// <param name="ResidentMaxPixels">The same with every component resident; 0 when unknown.</param>
public sealed record MemoryCapacity(string Strategy, long MaxPixels, long ResidentMaxPixels)
{
    /// <summary>No profile: the engine's default strategy, sizes unknown.</summary>
    public static MemoryCapacity Unknown { get; } = new(MemoryStrategyNames.Resident, 0, 0);
}
