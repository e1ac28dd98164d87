using System.Text.Json;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.Domain.Tiling;
using RenderFarm.Storage;
using RenderFarm.Storage.Models;

namespace RenderFarm.Coordinator.Jobs;

/// <summary>
/// The native side of a model (512 SD 1.x, 768 SD 2.x 768-v, 1024 SDXL), which a hires job's tile, overlap and base
/// default to. Read from the model's own files in the model store (<c>renderfarm models push</c>): its manifest says
/// whether it has SDXL's second text encoder, <c>model_index.json</c> names its pipeline and the scheduler config its
/// prediction type, which are what <see cref="ModelFolder.DefaultImageSide"/> decides by on a worker.
/// </summary>
/// <remarks>
/// A model the store does not hold (one a worker has installed locally and the coordinator only knows by name) is
/// taken as SD 1.x (<see cref="HiresLimits.DefaultModelSide"/>): the coordinator has nothing else to read, and workers
/// do not report model families. A client that renders such a model at another size names its tile and base.
/// </remarks>
internal sealed class ModelSides(IArtifactStore store, TimeProvider clock)
{
    private const string ModelIndex = "model_index.json";
    private const string SchedulerConfigPath = "scheduler/scheduler_config.json";
    private const string SecondTextEncoder = "text_encoder_2/model.onnx";

    /// <summary>The native side of <paramref name="model"/>; SD 1.x's when the store does not hold it.</summary>
    /// <exception cref="ArtifactStoreException">The store cannot be read (the job is refused rather than given another model's defaults).</exception>
    public async Task<int> ReadAsync(string model, CancellationToken cancellationToken)
    {
        if (!ModelNames.IsValid(model))
        {
            return HiresLimits.DefaultModelSide;
        }

        ModelManifest? manifest;
        try
        {
            manifest = await new ModelRepository(store, clock).TryGetManifestAsync(model, cancellationToken);
        }
        catch (ModelIntegrityException)
        {
            // A damaged manifest: no worker can fetch the model either, so its defaults decide nothing.
            manifest = null;
        }

        if (manifest is null)
        {
            return HiresLimits.DefaultModelSide;
        }

        var files = manifest.Files.Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        var className = files.Contains(ModelIndex) ? await ReadStringAsync(model, ModelIndex, "_class_name", cancellationToken) : null;
        var prediction = files.Contains(SchedulerConfigPath)
            ? await ReadStringAsync(model, SchedulerConfigPath, "prediction_type", cancellationToken)
            : null;
        var family = ModelFolder.IsXlLayout(files.Contains(SecondTextEncoder), className) ? ModelFamily.StableDiffusionXL : ModelFamily.StableDiffusion;
        return ModelFolder.DefaultImageSideOf(family, prediction ?? SchedulerConfig.StableDiffusion1.PredictionType);
    }

    // A property of a small JSON file of the model; null when the file is gone, is not JSON or lacks it, as a worker opening the
    // folder would then refuse the model anyway and the defaults no longer matter.
    private async Task<string?> ReadStringAsync(string model, string path, string property, CancellationToken cancellationToken)
    {
        Stream stream;
        try
        {
            stream = await store.OpenReadAsync(ArtifactKeys.ModelFile(model, path), cancellationToken);
        }
        catch (ArtifactNotFoundException)
        {
            return null;
        }

        await using (stream)
        {
            try
            {
                using var document = await JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken);
                return document.RootElement.ValueKind == JsonValueKind.Object
                    && document.RootElement.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String
                    ? value.GetString()
                    : null;
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }
}
