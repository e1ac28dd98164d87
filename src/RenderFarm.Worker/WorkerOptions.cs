using System.Globalization;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Domain.Policies;
using RenderFarm.Worker.Memory;
using RenderFarm.Worker.Models;

namespace RenderFarm.Worker;

/// <summary>Which <see cref="Rendering.IItemRenderer"/> the slots use.</summary>
public enum ItemRendererKind
{
    /// <summary>The Stable Diffusion engine: real images.</summary>
    Engine,

    /// <summary>A constant tiny PNG, instantly: measures the farm's own cost per item.</summary>
    Null,
}

/// <summary>How a worker reports its items' starts and images to the coordinator.</summary>
public enum UnitReportMode
{
    /// <summary>One <c>ItemStarted</c> per item as its render begins and one <c>ItemRendered</c> per stored image: what workers sent before <c>ItemsStarted</c> and <c>ItemsRendered</c>, for coordinators that predate them.</summary>
    PerItem,

    /// <summary>
    /// Starts (each as its render batch begins) and stored images held and sent together in <c>ItemsStarted</c> and
    /// <c>ItemsRendered</c> messages (see <see cref="WorkerOptions.ReportWindow"/>): fewer, larger messages, which is
    /// what a coordinator pays for per item. Needs a coordinator that consumes them.
    /// </summary>
    PerUnit,
}

/// <summary>Worker settings, bound from the <c>Worker</c> configuration section.</summary>
public sealed class WorkerOptions
{
    public const string SectionName = "Worker";

    /// <summary>The engine's tiny test model, generated on demand when an item names it and it is missing.</summary>
    public const string TinyModelName = "tiny-sd";

    public const int DefaultMaxBatchSize = 1;
    public const int DefaultMaxLoadedModels = 1;
    public const double DefaultProgressEventsPerSecond = 2;
    public static readonly TimeSpan DefaultPreviewInterval = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan DefaultReportWindow = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan DefaultRenderTimeout = TimeSpan.FromMinutes(20);
    public static readonly TimeSpan DefaultShutdownGrace = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan DefaultStoreOutageDeadline = TimeSpan.FromMinutes(15);
    public const string DefaultModelCacheSize = "50GiB";

    /// <summary>
    /// Identity of this worker process, stable for its lifetime; slots beyond the first append <c>-2</c>, <c>-3</c>, …
    /// Defaults to <c>host-pid</c>, so several workers on one machine never collide.
    /// </summary>
    public string Id { get; set; } = $"{Environment.MachineName}-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Folder holding one sub-folder per model; an item's <c>Model</c> names the sub-folder.</summary>
    public string ModelsRoot { get; set; } = DefaultModelsRoot();

    /// <summary>Model each slot loads at start (when <see cref="WarmUp"/> is on) so the first item is not the slow one.</summary>
    public string DefaultModel { get; set; } = TinyModelName;

    /// <summary>
    /// Independent render slots in this process, each reported as its own worker with its own id, heartbeat and
    /// warm pipeline. One per GPU for a distributed worker; N for the embedded farm's N in-process workers.
    /// </summary>
    public int Slots { get; set; } = 1;

    /// <summary>How often each slot heartbeats; the coordinator's lease (30 s) must span several of them.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = LeasePolicy.DefaultHeartbeatInterval;

    /// <summary>Upper bound on <c>ItemProgressed</c> events per item and second; the first and last step are always sent.</summary>
    public double ProgressEventsPerSecond { get; set; } = DefaultProgressEventsPerSecond;

    /// <summary>How starts and images are reported: per unit (the default) or per item, for a coordinator that predates per-unit reports.</summary>
    public UnitReportMode UnitReports { get; set; } = UnitReportMode.PerUnit;

    /// <summary>
    /// With per-unit reports, the longest a start's or stored image's report is held to travel with the unit's next
    /// ones; a render batch that itself took this long or longer sends what is held at once, and the next batch's start
    /// when it begins (waiting for the next would take as long). <c>00:00:00</c> sends each report alone.
    /// </summary>
    public TimeSpan ReportWindow { get; set; } = DefaultReportWindow;

    /// <summary>
    /// Least time between two previews of a running item (<c>ItemPreviewed</c>: the engine's latent approximation as a
    /// JPEG of a few KiB); <c>00:00:00</c> turns previews off. The first step always gets one, the last never.
    /// </summary>
    public TimeSpan PreviewInterval { get; set; } = DefaultPreviewInterval;

    /// <summary>
    /// The farm's invisible watermark: text (1 to 32 UTF-8 bytes, e.g. <c>StableDiffusionV1</c>) embedded in every image
    /// of at least 256×256 this worker renders, except the parts of hires jobs; null (the default) for none. Set it
    /// alike on every worker of a farm. See docs/watermark.md.
    /// </summary>
    public string? Watermark { get; set; }

    /// <summary>The UTF-8 bytes of <see cref="Watermark"/>; null when it is not set.</summary>
    internal byte[]? WatermarkPayload => Watermark is null ? null : System.Text.Encoding.UTF8.GetBytes(Watermark);

    /// <summary>
    /// The GPU this process renders on when the sessions run on CUDA: CUDA's ordinal among the devices
    /// <c>CUDA_VISIBLE_DEVICES</c> leaves visible (ONNX Runtime's <c>device_id</c>), and the heartbeat reports that same
    /// card's memory (<see cref="Heartbeats.GpuSelection"/>). One worker process per GPU; its slots share the card.
    /// </summary>
    public int Gpu { get; set; }

    /// <summary>ONNX Runtime intra-op threads per session; 0 lets it use every core.</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>Execution provider preference: Auto (CUDA when present), Cpu, or Cuda (fail at start without it).</summary>
    public ExecutionProviderPreference ExecutionProvider { get; set; } = ExecutionProviderPreference.Auto;

    /// <summary>
    /// Items of a unit that share every setting are denoised together in batches of up to this many. 1 (the default)
    /// renders one by one, which keeps an item's bytes independent of which items it happened to share a unit with.
    /// </summary>
    public int MaxBatchSize { get; set; } = DefaultMaxBatchSize;

    /// <summary>Pipelines kept loaded per slot; the least recently used one is unloaded beyond this.</summary>
    public int MaxLoadedModels { get; set; } = DefaultMaxLoadedModels;

    /// <summary>A batch that takes longer fails its items as retryable; a stuck device must not hold items forever.</summary>
    public TimeSpan RenderTimeout { get; set; } = DefaultRenderTimeout;

    /// <summary>
    /// On shutdown, how long running items may take to finish. Past it they are canceled without acknowledgement,
    /// so the broker redelivers their unit to another worker.
    /// </summary>
    public TimeSpan ShutdownGrace { get; set; } = DefaultShutdownGrace;

    /// <summary>
    /// How long a render waits for an object store that cannot be reached (connection refused, 5xx, timeouts) before
    /// it gives up and fails its item as retryable. Until then the outage spends none of the item's attempts: the
    /// worker retries with backoff, keeps the item's lease and reports the outage in its heartbeats.
    /// </summary>
    public TimeSpan StoreOutageDeadline { get; set; } = DefaultStoreOutageDeadline;

    /// <summary>
    /// Memory each slot's engine plans its renders with (<c>--memory-budget</c>): a size (<c>6GiB</c>, <c>512MiB</c>,
    /// a number of bytes) or a share of the device's free memory when the worker starts (<c>50%</c> or <c>0.5</c>).
    /// Resolved once at start. Unset: the engine runs every render resident and heartbeats report the device total.
    /// </summary>
    public string? MemoryBudget { get; set; }

    /// <summary>The budget in bytes, as before <see cref="MemoryBudget"/> existed; set at most one of the two.</summary>
    public long? MemoryBudgetBytes { get; set; }

    /// <summary>The configured budget (<see cref="MemoryBudget"/> or <see cref="MemoryBudgetBytes"/>), null when none; throws <see cref="FormatException"/> on a bad value.</summary>
    public MemoryBudgetSetting? BudgetSetting() =>
        !string.IsNullOrWhiteSpace(MemoryBudget) ? MemoryBudgetSetting.Parse(MemoryBudget)
        : MemoryBudgetBytes is { } bytes ? MemoryBudgetSetting.Parse(bytes.ToString(CultureInfo.InvariantCulture))
        : null;

    /// <summary>Pool reported for placement (see <see cref="PlacementProperties.Pool"/>).</summary>
    public string Pool { get; set; } = PlacementProperties.DefaultPool;

    /// <summary>Engine for real images; Null for the coordinator throughput bench.</summary>
    public ItemRendererKind Renderer { get; set; } = ItemRendererKind.Engine;

    /// <summary>
    /// Where the worker serves <c>/metrics</c>, <c>/health</c> and <c>/alive</c> (e.g. <c>http://0.0.0.0:9464</c>;
    /// <c>--urls</c> sets it too). Unset, the worker opens no port at all.
    /// </summary>
    public string? Urls { get; set; }

    /// <summary>Load <see cref="DefaultModel"/> into every slot at start.</summary>
    public bool WarmUp { get; set; } = true;

    /// <summary>
    /// Disk the models fetched from the model store may take under <see cref="ModelsRoot"/> (<c>50GiB</c>, <c>800MiB</c>,
    /// a number of bytes); the least recently used are evicted beyond it. Models put there by hand do not count.
    /// </summary>
    public string ModelCacheSize { get; set; } = DefaultModelCacheSize;

    /// <summary><see cref="ModelCacheSize"/> in bytes; throws <see cref="FormatException"/> on a bad value.</summary>
    public long ModelCacheBytes() => ByteSize.Parse(ModelCacheSize);

    /// <summary>The id slot <paramref name="index"/> (0-based) reports: the worker id itself for the first slot.</summary>
    public string SlotId(int index) =>
        index == 0 ? Id : $"{Id}-{(index + 1).ToString(CultureInfo.InvariantCulture)}";

    /// <summary><c>$RENDERFARM_HOME/models</c>, else <c>$XDG_CACHE_HOME</c> or <c>~/.cache</c> + <c>renderfarm/models</c>, as the CLI uses.</summary>
    public static string DefaultModelsRoot()
    {
        var home = Environment.GetEnvironmentVariable("RENDERFARM_HOME");
        if (string.IsNullOrWhiteSpace(home))
        {
            var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrWhiteSpace(cache))
            {
                cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            }

            home = Path.Combine(cache, "renderfarm");
        }

        return Path.Combine(home, "models");
    }
}

internal sealed class WorkerOptionsValidator : IValidateOptions<WorkerOptions>
{
    private const int MaxSlots = 64;

    public ValidateOptionsResult Validate(string? name, WorkerOptions options)
    {
        var failures = new List<string>();
        void Fail(string property, string message) => failures.Add($"{WorkerOptions.SectionName}:{property} {message}");

        if (string.IsNullOrWhiteSpace(options.Id))
        {
            Fail(nameof(options.Id), "must not be empty.");
        }

        if (string.IsNullOrWhiteSpace(options.ModelsRoot))
        {
            Fail(nameof(options.ModelsRoot), "must name a folder.");
        }

        if (!ModelCatalog.IsValidName(options.DefaultModel))
        {
            Fail(nameof(options.DefaultModel), $"must be a plain folder name, got '{options.DefaultModel}'.");
        }

        if (options.Slots is < 1 or > MaxSlots)
        {
            Fail(nameof(options.Slots), $"must be between 1 and {MaxSlots}, got {options.Slots}.");
        }

        var lease = LeasePolicy.Default with { HeartbeatInterval = options.HeartbeatInterval };
        foreach (var error in lease.Validate())
        {
            Fail(nameof(options.HeartbeatInterval), $"is {options.HeartbeatInterval}: {error}");
        }

        if (!double.IsFinite(options.ProgressEventsPerSecond) || options.ProgressEventsPerSecond <= 0)
        {
            Fail(nameof(options.ProgressEventsPerSecond), $"must be a positive number, got {options.ProgressEventsPerSecond}.");
        }

        if (!Enum.IsDefined(options.UnitReports))
        {
            Fail(nameof(options.UnitReports), $"must be {UnitReportMode.PerUnit} or {UnitReportMode.PerItem}, got {options.UnitReports}.");
        }

        if (options.ReportWindow < TimeSpan.Zero)
        {
            Fail(nameof(options.ReportWindow), $"must be 00:00:00 or positive, got {options.ReportWindow}.");
        }

        if (options.PreviewInterval < TimeSpan.Zero)
        {
            Fail(nameof(options.PreviewInterval), $"must be positive, or 00:00:00 to turn previews off; got {options.PreviewInterval}.");
        }

        if (options.WatermarkPayload is { } watermark && RenderFarm.Diffusion.Watermarking.DwtDctWatermark.PayloadProblem(watermark) is { } watermarkProblem)
        {
            Fail(nameof(options.Watermark), watermarkProblem);
        }

        if (options.Gpu < 0)
        {
            Fail(nameof(options.Gpu), $"must be 0 or more (GPUs are numbered from 0), got {options.Gpu}.");
        }

        if (options.IntraOpThreads < 0)
        {
            Fail(nameof(options.IntraOpThreads), "must be 0 (all cores) or positive.");
        }

        if (!Enum.IsDefined(options.ExecutionProvider))
        {
            Fail(nameof(options.ExecutionProvider), $"must be one of {string.Join(", ", Enum.GetNames<ExecutionProviderPreference>())}.");
        }
        else if (options.Renderer == ItemRendererKind.Engine)
        {
            try
            {
                if (ExecutionProviders.Resolve(options.ExecutionProvider) == ExecutionProviders.Cuda)
                {
                    Heartbeats.GpuSelection.FromEnvironment(options.Gpu);
                }
            }
            catch (InvalidOperationException ex)
            {
                Fail(nameof(options.ExecutionProvider), ex.Message);
            }
            catch (ArgumentException ex)
            {
                Fail(nameof(options.Gpu), ex.Message);
            }
        }

        if (options.MaxBatchSize < 1)
        {
            Fail(nameof(options.MaxBatchSize), "must be at least 1.");
        }

        if (options.MaxLoadedModels < 1)
        {
            Fail(nameof(options.MaxLoadedModels), "must be at least 1.");
        }

        if (options.RenderTimeout <= TimeSpan.Zero)
        {
            Fail(nameof(options.RenderTimeout), "must be positive.");
        }

        if (options.ShutdownGrace < TimeSpan.Zero)
        {
            Fail(nameof(options.ShutdownGrace), "must not be negative.");
        }

        if (options.StoreOutageDeadline <= TimeSpan.Zero)
        {
            Fail(nameof(options.StoreOutageDeadline), "must be positive.");
        }

        if (options.MemoryBudgetBytes is <= 0)
        {
            Fail(nameof(options.MemoryBudgetBytes), "must be positive when set.");
        }

        // Blank counts as unset, so an empty environment variable can clear a budget set elsewhere.
        if (options.MemoryBudget is { } budget && !string.IsNullOrWhiteSpace(budget))
        {
            if (!MemoryBudgetSetting.TryParse(budget, out _, out var budgetError))
            {
                Fail(nameof(options.MemoryBudget), $"(--memory-budget) {budgetError}.");
            }
            else if (options.MemoryBudgetBytes is not null)
            {
                Fail(nameof(options.MemoryBudget), $"and {WorkerOptions.SectionName}:{nameof(options.MemoryBudgetBytes)} are both set; set one.");
            }
        }

        if (string.IsNullOrWhiteSpace(options.Pool))
        {
            Fail(nameof(options.Pool), "must not be empty.");
        }

        if (!ByteSize.TryParse(options.ModelCacheSize, out _, out var cacheError))
        {
            Fail(nameof(options.ModelCacheSize), $"must be a disk size such as 50GiB or 800MiB: {cacheError}.");
        }

        if (!Enum.IsDefined(options.Renderer))
        {
            Fail(nameof(options.Renderer), $"must be one of {string.Join(", ", Enum.GetNames<ItemRendererKind>())}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
