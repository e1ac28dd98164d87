using System.Text.Json;
using Microsoft.Extensions.Options;
using RenderFarm.Coordinator.Options;
using RenderFarm.Storage;
using RenderFarm.Storage.Models;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>
/// A1111's current checkpoint (<c>sd_model_checkpoint</c>), which <c>POST /sdapi/v1/options</c> sets for every later
/// call. A1111 keeps it per server; the farm keeps it as one small object in the artifact store
/// (<see cref="StoreKey"/>), so every coordinator of the farm reads the same value and it survives restarts without a
/// schema change. Unset, it is the coordinator's default model (the first of <c>Coordinator:Models</c>).
/// </summary>
internal sealed class Automatic1111Checkpoint(IArtifactStore store, IOptions<CoordinatorOptions> options, TimeProvider clock)
{
    public const string OptionName = "sd_model_checkpoint";

    public const string StoreKey = "automatic1111/options.json";

    private sealed record Stored(string SdModelCheckpoint);

    /// <summary>The checkpoint set through the options route; null when none was set.</summary>
    public async Task<string?> GetSetAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await store.OpenReadAsync(StoreKey, cancellationToken);
            return (await JsonSerializer.DeserializeAsync<Stored>(stream, Automatic1111Json.Options, cancellationToken))?.SdModelCheckpoint;
        }
        catch (ArtifactNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The checkpoint a call without <c>override_settings</c> renders with.</summary>
    public async Task<string> GetCurrentAsync(CancellationToken cancellationToken) =>
        await GetSetAsync(cancellationToken) ?? options.Value.EffectiveModels[0];

    public async Task SetAsync(string model, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(new Stored(model), Automatic1111Json.Options));
        await store.PutAsync(StoreKey, content, "application/json", cancellationToken);
    }

    /// <summary>Models a call may name: the configured ones, then those pushed to the model store, each once.</summary>
    public async Task<IReadOnlyList<(string Name, ModelManifest? Manifest)>> ListModelsAsync(CancellationToken cancellationToken)
    {
        var models = options.Value.EffectiveModels.Select(m => (Name: m, Manifest: (ModelManifest?)null)).ToList();
        foreach (var manifest in await new ModelRepository(store, clock).ListAsync(cancellationToken))
        {
            var known = models.FindIndex(m => m.Name == manifest.Name);
            if (known >= 0)
            {
                models[known] = (manifest.Name, manifest);
            }
            else
            {
                models.Add((manifest.Name, manifest));
            }
        }

        return models;
    }

    /// <summary>
    /// The farm model an A1111 checkpoint value names: A1111 titles append the short hash (<c>"name [a1b2c3d4e5]"</c>),
    /// which clients send back as they got it from <c>/sd-models</c>.
    /// </summary>
    public static string ModelName(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var text = value.Trim();
        var bracket = text.LastIndexOf(" [", StringComparison.Ordinal);
        return bracket > 0 && text.EndsWith(']') ? text[..bracket] : text;
    }
}
