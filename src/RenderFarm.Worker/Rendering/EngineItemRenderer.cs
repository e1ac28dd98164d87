using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Safety;
using RenderFarm.Diffusion.Upscaling;
using RenderFarm.Diffusion.Watermarking;
using RenderFarm.Storage.Models;
using RenderFarm.Telemetry;
using RenderFarm.Worker.Memory;
using RenderFarm.Worker.Models;

namespace RenderFarm.Worker.Rendering;

/// <summary>
/// Renders with <see cref="StableDiffusionPipeline"/>. Keeps up to <see cref="WorkerOptions.MaxLoadedModels"/>
/// pipelines warm (least recently used unloaded first); one instance per slot, because ONNX Runtime sessions are
/// not shared between concurrent renders.
/// </summary>
public sealed partial class EngineItemRenderer : IItemRenderer
{
    private readonly ModelCatalog _catalog;
    private readonly ILogger<EngineItemRenderer> _logger;
    private readonly ExecutionOptions _execution;
    private readonly int _maxLoaded;
    private readonly byte[]? _watermark;
    // Most recently used last; touched only by the slot's single render at a time.
    private readonly List<(string Name, StableDiffusionPipeline Pipeline)> _pipelines = [];

    // The content hash of each open model's folder, reported with its images (manifests' modelHash).
    private readonly Dictionary<StableDiffusionPipeline, string> _hashes = [];
    private volatile string[] _loaded = [];
    private volatile string? _strategy;
    private (string Name, Upscaler Upscaler)? _upscaler;

    /// <param name="catalog">Where models are found.</param>
    /// <param name="options">Provider, threads and how many models stay loaded.</param>
    /// <param name="memory">The process's memory budget: with one, the engine plans every render against it.</param>
    /// <param name="logger">Load and unload messages.</param>
    public EngineItemRenderer(ModelCatalog catalog, IOptions<WorkerOptions> options, WorkerMemory memory, ILogger<EngineItemRenderer> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(memory);
        _catalog = catalog;
        _logger = logger;
        _execution = new ExecutionOptions
        {
            Provider = options.Value.ExecutionProvider,
            CudaDeviceId = options.Value.Gpu,
            IntraOpThreads = options.Value.IntraOpThreads,
            MemoryBudgetBytes = memory.BudgetBytes,
        };
        _maxLoaded = options.Value.MaxLoadedModels;
        _watermark = options.Value.WatermarkPayload;
    }

    /// <summary>How this renderer's sessions are created (provider, CUDA device, threads, budget).</summary>
    internal ExecutionOptions Execution => _execution;

    /// <inheritdoc />
    public string? MemoryStrategy => _strategy;

    /// <inheritdoc />
    public IReadOnlyCollection<string> LoadedModels => _loaded;

    /// <inheritdoc />
    public async Task WarmUpAsync(string model, CancellationToken cancellationToken)
    {
        var pipeline = await PipelineAsync(model, cancellationToken);
        if (!HoldsResident(pipeline))
        {
            // The plan would unload them again after the first render; loading them all could exceed the budget.
            LogWarmUpWithoutLoading(model);
            return;
        }

        await Task.Run(() =>
        {
            pipeline.TextEncoder.Component.Load();
            pipeline.TextEncoder2?.Component.Load();
            pipeline.Unet.Component.Load();
            pipeline.VaeDecoder.Component.Load();
        }, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RenderedImage>> RenderAsync(RenderBatch batch, IProgress<RenderStep>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.First.Mode == RenderModes.HiresTile)
        {
            var tiles = HiresTileRenderer.Prepare(batch);
            if (RenderModes.IsUpscaleOnly(batch.First))
            {
                // An upscale job's tile: the upscaler alone, so the diffusion model is never loaded for it.
                var only = batch.First.Hires?.Upscaler is { } onlyName ? new ModelBaseUpscaler(await UpscalerAsync(onlyName, cancellationToken)) : null;
                return await Task.Run(() => HiresTileRenderer.Upscale(only, tiles, progress, cancellationToken), cancellationToken);
            }

            var tilePipeline = await PipelineAsync(batch.First.Model, cancellationToken);
            var upscaler = batch.First.Hires?.Upscaler is { } upscalerName ? new ModelBaseUpscaler(await UpscalerAsync(upscalerName, cancellationToken)) : null;
            var rendered = await HiresTileRenderer.RenderAsync(tilePipeline, upscaler, tiles, progress, cancellationToken);
            return [.. rendered.Select(image => image with { ModelHash = HashOf(tilePipeline) })];
        }

        var request = ToRequest(batch, _watermark);
        var pipeline = await PipelineAsync(batch.First.Model, cancellationToken);
        var engineProgress = progress is null ? null : new StepProgress(progress);
        return await Task.Run(() =>
        {
            // Planned first (it throws MemoryBudgetExceededException when nothing fits), so heartbeats during the
            // render already report the strategy it runs with.
            _strategy = WorkerMemory.Describe(pipeline.ChooseMemory(request).Strategy);
            var result = pipeline.Generate(request, engineProgress, cancellationToken);
            _strategy = WorkerMemory.Describe(result.Memory);
            Activity.Current?.SetTag(RenderFarmTags.Strategy, _strategy);
            // The fourth stage, after the engine's three: PNG encoding with the parameters' text chunks.
            using var encode = RenderFarmDiagnostics.EngineActivitySource.StartActivity("png encode");
            return (IReadOnlyList<RenderedImage>)result.Images
                .Select(image => new RenderedImage(batch.Items[image.Index].ItemId, image.ToPng(), HashOf(pipeline), image.Safety?.Outcome))
                .ToList();
        }, cancellationToken);
    }

    /// <summary>The engine request for <paramref name="batch"/>; throws <see cref="ArgumentException"/> for settings it cannot take.</summary>
    /// <param name="batch">The items.</param>
    /// <param name="watermark">
    /// The farm's watermark payload (<see cref="WorkerOptions.Watermark"/>): embedded by the engine in images of at least
    /// 256×256 that are not parts of a hires job (a mark in a base or a tile would not survive into the stitched image);
    /// smaller images are rendered unmarked rather than failed, since a farm-wide default must not refuse a valid job.
    /// The job's own payload (<see cref="RenderBatch.Watermark"/>) takes its place; the coordinator admits one only
    /// for images it fits, so the engine refuses any other.
    /// </param>
    internal static GenerationRequest ToRequest(RenderBatch batch, byte[]? watermark = null)
    {
        var first = batch.First;
        SafetyMode? safety = null;
        if (batch.Safety is { } safetyName)
        {
            safety = SafetyModes.TryParse(safetyName, out var parsed)
                ? parsed
                : throw new ArgumentException($"Unknown safety mode '{safetyName}'. Valid modes: {string.Join(", ", SafetyModes.Names)}.", nameof(batch));
        }

        var farmWatermark = watermark is not null && first.Hires is null && DwtDctWatermark.SizeProblem(first.Width, first.Height) is null ? watermark : null;
        var mode = first.Mode switch
        {
            RenderModes.Txt2Img => GenerationMode.TextToImage,
            RenderModes.Img2Img => GenerationMode.ImageToImage,
            RenderModes.Inpaint => GenerationMode.Inpaint,
            RenderModes.HiresStitch => throw new ArgumentException("A hires-stitch item blends stored tiles; the consumer streams it to the store without the engine.", nameof(batch)),
            _ => throw new ArgumentException($"Unknown mode '{first.Mode}'. Valid modes: {string.Join(", ", RenderModes.All)}.", nameof(batch)),
        };

        var request = new GenerationRequest
        {
            // Seeds are validated non-negative upstream; the cast keeps the engine's 64-bit seed space either way.
            Images = batch.Items.Select(i => new ImageSpec(i.Prompt, i.NegativePrompt, unchecked((ulong)i.Seed))).ToArray(),
            Width = first.Width,
            Height = first.Height,
            Steps = first.Steps,
            GuidanceScale = first.GuidanceScale,
            Sampler = first.Sampler,
            Mode = mode,
            Watermark = batch.Watermark is { } jobWatermark ? System.Text.Encoding.UTF8.GetBytes(jobWatermark) : farmWatermark,
            Safety = safety,
        };

        if (mode == GenerationMode.TextToImage)
        {
            return request;
        }

        if (batch.InitImage is not { } init)
        {
            throw new ArgumentException($"{first.Mode} needs an init image.", nameof(batch));
        }

        request = request with
        {
            InitImage = Decode(init, "init image"),
            Strength = first.Strength ?? request.Strength,
        };

        if (mode == GenerationMode.Inpaint)
        {
            if (batch.Mask is not { } mask)
            {
                throw new ArgumentException("Inpaint needs a mask.", nameof(batch));
            }

            request = request with { Mask = Decode(mask, "mask") };
        }

        return request;
    }

    /// <summary>Whether a default-sized (512²) render of <paramref name="pipeline"/> keeps every session resident under the budget.</summary>
    private bool HoldsResident(StableDiffusionPipeline pipeline) =>
        _execution.MemoryBudgetBytes is not { } budget
        || pipeline.MemoryProfile is not { } profile
        || new MemoryPlanner(profile).Predict(new RenderShape(WorkerMemory.DefaultSide, WorkerMemory.DefaultSide), Diffusion.Memory.MemoryStrategy.Resident).PeakBytes <= budget;

    private static RgbImage Decode(ReadOnlyMemory<byte> encoded, string what)
    {
        try
        {
            return PngCodec.Decode(encoded.Span);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new ArgumentException($"The {what} cannot be decoded: {ex.Message}", ex);
        }
    }

    private string? HashOf(StableDiffusionPipeline pipeline) => _hashes.GetValueOrDefault(pipeline);

    private async Task<StableDiffusionPipeline> PipelineAsync(string model, CancellationToken cancellationToken)
    {
        var index = _pipelines.FindIndex(p => p.Name == model);
        if (index >= 0)
        {
            var hit = _pipelines[index];
            _pipelines.RemoveAt(index);
            _pipelines.Add(hit);
            return hit.Pipeline;
        }

        var directory = await _catalog.ResolveAsync(model, cancellationToken);
        StableDiffusionPipeline pipeline;
        try
        {
            pipeline = StableDiffusionPipeline.Open(directory, _execution);
        }
        catch (ModelFormatException ex)
        {
            throw new ModelNotFoundException($"Model '{model}' cannot be opened: {ex.Message}", ex);
        }

        while (_pipelines.Count >= _maxLoaded)
        {
            var evicted = _pipelines[0];
            _pipelines.RemoveAt(0);
            _hashes.Remove(evicted.Pipeline);
            evicted.Pipeline.Dispose();
            LogUnloaded(evicted.Name);
        }

        // Hashed once per open: the cost is paid at load, not per item.
        _hashes[pipeline] = await Task.Run(() => ModelContentHash.OfFolder(directory), cancellationToken);
        _pipelines.Add((model, pipeline));
        _loaded = _pipelines.Select(p => p.Name).ToArray();
        LogLoaded(model, directory);
        return pipeline;
    }

    /// <summary>
    /// The upscaler model <paramref name="name"/>, resolved like a model (installed, or fetched from the model store);
    /// the last one used stays open, since a hires job's tiles all name the same one.
    /// </summary>
    /// <exception cref="ModelNotFoundException">It is neither on disk nor in the store, or the folder is not an upscaler.</exception>
    private async Task<Upscaler> UpscalerAsync(string name, CancellationToken cancellationToken)
    {
        if (_upscaler is { } open && open.Name == name)
        {
            return open.Upscaler;
        }

        var directory = await _catalog.ResolveAsync(name, cancellationToken);
        Upscaler upscaler;
        try
        {
            upscaler = new Upscaler(UpscalerFolder.Open(directory), _execution);
        }
        catch (ModelFormatException ex)
        {
            throw new ModelNotFoundException($"Upscaler '{name}' cannot be opened: {ex.Message}", ex);
        }

        _upscaler?.Upscaler.Dispose();
        _upscaler = (name, upscaler);
        LogLoaded(name, directory);
        return upscaler;
    }

    public void Dispose()
    {
        _upscaler?.Upscaler.Dispose();
        _upscaler = null;
        foreach (var (_, pipeline) in _pipelines)
        {
            pipeline.Dispose();
        }

        _pipelines.Clear();
        _loaded = [];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Opened model {Model} from {Directory}")]
    private partial void LogLoaded(string model, string directory);

    [LoggerMessage(Level = LogLevel.Information, Message = "Opened model {Model} without loading its sessions: the memory budget does not hold them all at once")]
    private partial void LogWarmUpWithoutLoading(string model);

    [LoggerMessage(Level = LogLevel.Information, Message = "Unloaded model {Model} to make room")]
    private partial void LogUnloaded(string model);

    /// <summary>Reports on the render thread itself: <see cref="Progress{T}"/> would post to the thread pool and reorder steps.</summary>
    private sealed class StepProgress(IProgress<RenderStep> inner) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => inner.Report(new RenderStep(value.Step, value.TotalSteps, value.Latents));
    }
}
