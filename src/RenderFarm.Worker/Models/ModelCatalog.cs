using Microsoft.Extensions.Options;
using RenderFarm.ModelGenerator;

namespace RenderFarm.Worker.Models;

/// <summary>An item named a model this worker cannot find or open; another attempt here would fail the same way.</summary>
public sealed class ModelNotFoundException : Exception
{
    public ModelNotFoundException(string message) : base(message) { }
    public ModelNotFoundException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// Maps an item's model name to a folder under <see cref="WorkerOptions.ModelsRoot"/>. The tiny test model is
/// generated on demand; any other model missing there is fetched from the model store by <see cref="ModelCache"/>
/// (when one is given; without it a missing model is simply not found).
/// </summary>
public sealed class ModelCatalog(IOptions<WorkerOptions> options, ModelCache? cache = null)
{
    private readonly SemaphoreSlim _generate = new(1, 1);

    public string Root => options.Value.ModelsRoot;

    /// <summary>A model name is one path segment: items come off the bus and must not reach outside the models root.</summary>
    public static bool IsValidName(string? name) =>
        !string.IsNullOrWhiteSpace(name)
        && name.Length <= 200
        && name is not ("." or "..")
        && name.IndexOfAny(['/', '\\', '\0']) < 0
        && name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0;

    /// <summary>
    /// Models on disk under <see cref="Root"/> (loaded or not), sorted: folders in the diffusers ONNX layout (with a
    /// <c>model_index.json</c>). Hidden folders (generations or downloads in progress) are left out.
    /// </summary>
    public IReadOnlyList<string> Installed()
    {
        try
        {
            return Directory.Exists(Root)
                ? Directory.EnumerateDirectories(Root)
                    .Where(d => File.Exists(Path.Combine(d, "model_index.json")))
                    .Select(Path.GetFileName)
                    .OfType<string>()
                    .Where(n => !n.StartsWith('.') && IsValidName(n))
                    .Order(StringComparer.Ordinal)
                    .ToList()
                : [];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Heartbeats must go on: a folder vanishing mid-listing reads as "nothing installed" for one beat.
            return [];
        }
    }

    /// <summary>The folder of <paramref name="name"/>, generating the tiny model when that is what is asked for.</summary>
    /// <exception cref="ModelNotFoundException">The name is not a plain folder name, or the model is neither on disk nor in the model store.</exception>
    /// <exception cref="Storage.Models.ModelIntegrityException">The store's copy fails verification (retryable: a new push repairs it).</exception>
    public async Task<string> ResolveAsync(string name, CancellationToken cancellationToken)
    {
        if (!IsValidName(name))
        {
            throw new ModelNotFoundException($"'{name}' is not a model name: it must be a single folder name under the models root.");
        }

        var directory = Path.Combine(Root, name);
        if (name == WorkerOptions.TinyModelName)
        {
            // EnsureTiny is safe across processes; the lock only spares slots of one process generating it twice.
            await _generate.WaitAsync(cancellationToken);
            try
            {
                // With its shipped memory profile, so a budget is planned with from the first render.
                return await Task.Run(() => TestModels.EnsureTiny(directory, memoryProfile: true), cancellationToken);
            }
            finally
            {
                _generate.Release();
            }
        }

        if (!Directory.Exists(directory))
        {
            return cache is null
                ? throw new ModelNotFoundException($"Model '{name}' is not installed on this worker (looked in '{directory}').")
                : await cache.FetchAsync(name, cancellationToken);
        }

        cache?.MarkUsed(name);
        return directory;
    }
}
