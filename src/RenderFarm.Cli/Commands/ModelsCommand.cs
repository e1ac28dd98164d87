using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Polly;
using RenderFarm.Cli.Farm;
using RenderFarm.Client;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Upscaling;
using RenderFarm.ModelGenerator;
using RenderFarm.ModelGenerator.Upscaler;
using RenderFarm.Storage;
using RenderFarm.Storage.Models;
using ModelNames = RenderFarm.Storage.Models.ModelNames;

namespace RenderFarm.Cli.Commands;

/// <summary>
/// <c>renderfarm models</c>: <c>generate</c> writes the project's own small models (no download needed); <c>push</c>
/// uploads a model folder to the farm's model store, from which workers fetch it on demand; <c>list</c> shows the
/// store's models and which workers hold each.
/// </summary>
internal static class ModelsCommand
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Create() => new("models", "Model folders: generate test models, push models to the farm's store, list them.")
    {
        CreateGenerate(),
        CreatePush(),
        CreateList(),
    };

    private static Command CreateGenerate()
    {
        var kind = new Option<string>("--kind")
        {
            Description = "tiny (random-weight SD architecture), tiny-sd2 (the same in SD 2.x's layout: wider OpenCLIP-style text encoder, v-prediction, 768² by default), tiny-sdxl (SDXL's layout: two text encoders, pooled text embeddings and size conditioning, 1024² by default), oracle (exact math for tests) or tiny-safety (tiny with a safety checker that flags images whose centre is redder than CLIP's mean red); tiny-upscaler writes a super-resolution model with a closed-form output instead (see --scale).",
            DefaultValueFactory = _ => "tiny",
        };
        kind.AcceptOnlyFromAmong("tiny", "tiny-sd2", "tiny-sdxl", "oracle", "tiny-safety", "tiny-upscaler");
        var scale = new Option<int>("--scale") { Description = "tiny-upscaler only: its scale factor, 2 or 4.", DefaultValueFactory = _ => 2 };
        scale.AcceptOnlyFromAmong("2", "4");
        var output = new Argument<string>("directory") { Description = "Folder to write the model into." };
        var generate = new Command("generate", "Write a generated test model in the diffusers ONNX layout.") { kind, output, scale };
        generate.SetAction(result =>
        {
            var directory = result.GetRequiredValue(output);
            if (result.GetValue(kind) == "oracle")
            {
                TestModels.WriteOracle(directory);
            }
            else if (result.GetValue(kind) == "tiny-sd2")
            {
                // No memory profile ships for it: `renderfarm plan --calibrate --model DIR` measures one on this machine.
                TestModels.WriteTiny(directory, new TinyModelOptions(Family: TinyFamily.StableDiffusion2));
            }
            else if (result.GetValue(kind) == "tiny-upscaler")
            {
                TestModels.WriteTinyUpscaler(directory, new TinyUpscalerOptions(result.GetValue(scale)));
            }
            else if (result.GetValue(kind) == "tiny-sdxl")
            {
                TestModels.WriteTiny(directory, new TinyModelOptions(Family: TinyFamily.StableDiffusionXL));
                TestModels.WriteTinyMemoryProfile(directory, overwrite: false, TinyFamily.StableDiffusionXL);
            }
            else if (result.GetValue(kind) == "tiny-safety")
            {
                TestModels.WriteTinyWithSafetyChecker(directory);
                TestModels.WriteTinyMemoryProfile(directory, overwrite: false);
            }
            else
            {
                TestModels.WriteTiny(directory);
                // The shipped profile, so `renderfarm plan --model DIR` plans at once; a calibrated one is kept.
                TestModels.WriteTinyMemoryProfile(directory, overwrite: false);
            }

            result.Out().WriteLine(Path.GetFullPath(directory));
            return ExitCodes.Success;
        });
        return generate;
    }

    private static Command CreatePush()
    {
        var directory = new Argument<string>("directory") { Description = "The model folder (diffusers ONNX layout: model_index.json, unet/, text_encoder/, ...)." };
        var name = new Option<string?>("--name") { Description = $"The model's name in the store ({ModelNames.Rule}). Default: the folder's name." };
        var replace = new Option<bool>("--replace") { Description = "Replace a model of that name already in the store." };
        var store = ModelStore.CreateStoreOption();
        var data = ModelStore.CreateDataOption();
        var push = new Command("push", "Upload a model folder to the farm's model store (files first, then its manifest of SHA-256 hashes); workers fetch it when an item names it.")
        {
            directory, name, replace, store, data,
        };
        push.SetAction((result, cancellationToken) => PushAsync(
            result,
            result.GetRequiredValue(directory),
            result.GetValue(name),
            result.GetValue(replace),
            new ModelStore(result.GetRequiredValue(store), result.GetValue(data)),
            cancellationToken));
        return push;
    }

    private static Command CreateList()
    {
        var store = ModelStore.CreateStoreOption();
        var data = ModelStore.CreateDataOption();
        var farm = FarmConnection.CreateOption();
        var json = new Option<bool>("--json") { Description = "Print {store, farm, models: [{name, totalBytes, fileCount, pushedAt, workers}]} as JSON (workers: null when no farm answered)." };
        var list = new Command("list", "List the models in the farm's model store: size, files, when pushed, and which live workers hold each (asked of --farm; 'unknown (no farm)' when it does not answer).")
        {
            store, data, farm, json,
        };
        list.SetAction((result, cancellationToken) => ListAsync(
            result,
            new ModelStore(result.GetRequiredValue(store), result.GetValue(data)),
            result.GetRequiredValue(farm),
            result.GetValue(json),
            cancellationToken));
        return list;
    }

    private static async Task<int> PushAsync(ParseResult result, string directory, string? name, bool replace, ModelStore where, CancellationToken cancellationToken)
    {
        var folder = Path.GetFullPath(directory);
        if (!Directory.Exists(folder))
        {
            return result.Fail(ExitCodes.InvalidInput, $"the model folder '{folder}' does not exist.");
        }

        if (!File.Exists(Path.Combine(folder, "model_index.json")) && !UpscalerFolder.IsUpscaler(folder))
        {
            return result.Fail(ExitCodes.InvalidInput,
                $"'{folder}' is not a model folder: it has no model_index.json (the diffusers ONNX layout) nor {UpscalerFolder.ConfigFile} (an upscaler); see models/README.md.");
        }

        name ??= Path.GetFileName(Path.TrimEndingDirectorySeparator(folder));
        if (!ModelNames.IsValid(name))
        {
            return result.Fail(ExitCodes.InvalidInput, $"--name '{name}' is not a valid model name ({ModelNames.Rule}).");
        }

        return await where.RunAsync(result, createIfMissing: true, async (store, description) =>
        {
            var output = result.Out();
            output.WriteLine($"pushing {folder} as '{name}' to {description}");
            // A push creates the local store when missing, so there always is one here.
            var manifest = await new ModelRepository(store!).PushAsync(name, folder, replace, new FileLines(output), cancellationToken);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"pushed '{name}': {manifest.FileCount} files, {ByteSize.Format(manifest.TotalBytes)}; manifest {ModelRepository.ManifestKey(name)}"));
            return ExitCodes.Success;
        }, cancellationToken);
    }

    private static async Task<int> ListAsync(ParseResult result, ModelStore where, string farm, bool json, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(farm, UriKind.Absolute, out var farmAddress) || farmAddress.Scheme is not ("http" or "https"))
        {
            return result.Fail(ExitCodes.InvalidInput, $"--farm must be an http:// or https:// URL, got '{farm}'.");
        }

        return await where.RunAsync(result, createIfMissing: false, async (store, description) =>
        {
            IReadOnlyList<ModelManifest> manifests = store is null ? [] : await new ModelRepository(store).ListAsync(cancellationToken);
            var workers = await LiveWorkersAsync(farmAddress, FarmConnection.ApiKeyOf(result), cancellationToken);
            var rows = manifests.Select(m => new
            {
                m.Name,
                m.TotalBytes,
                m.FileCount,
                PushedAt = m.CreatedAt,
                Workers = workers?
                    .Where(w => (w.InstalledModels ?? []).Contains(m.Name, StringComparer.Ordinal) || w.LoadedModels.Contains(m.Name, StringComparer.Ordinal))
                    .Select(w => w.Id)
                    .Order(StringComparer.Ordinal)
                    .ToList(),
            }).ToList();

            var output = result.Out();
            if (json)
            {
                output.WriteLine(JsonSerializer.Serialize(new { Store = description, Farm = workers is null ? null : farmAddress.ToString(), Models = rows }, Json));
                return ExitCodes.Success;
            }

            var c = CultureInfo.InvariantCulture;
            var width = Math.Max(20, rows.Select(r => r.Name.Length).DefaultIfEmpty(0).Max());
            output.WriteLine(string.Create(c, $"{"NAME".PadRight(width)}  {"SIZE",10}  {"FILES",5}  {"PUSHED",-20}  WORKERS"));
            foreach (var row in rows)
            {
                var holders = row.Workers is null ? "unknown (no farm)" : row.Workers.Count == 0 ? "-" : string.Join(',', row.Workers);
                output.WriteLine(string.Create(c, $"{row.Name.PadRight(width)}  {ByteSize.Format(row.TotalBytes),10}  {row.FileCount,5}  {row.PushedAt,-20:u}  {holders}"));
            }

            var unknown = workers is null ? $"; workers unknown: no farm answered at {farmAddress}" : string.Empty;
            output.WriteLine(string.Create(c, $"{rows.Count} model(s) in {description}{unknown}"));
            return ExitCodes.Success;
        }, cancellationToken);
    }

    /// <summary>The farm's live workers, or null when it does not answer (the listing still shows the store).</summary>
    private static async Task<IReadOnlyList<Client.Worker>?> LiveWorkersAsync(Uri farm, string? apiKey, CancellationToken cancellationToken)
    {
        var services = new ServiceCollection();
        services.AddRenderFarmClient(farm, resilience =>
        {
            // A listing should not wait long on a farm that is not there: one quick retry, short attempts.
            resilience.Retry.MaxRetryAttempts = 1;
            resilience.Retry.Delay = TimeSpan.FromMilliseconds(200);
            resilience.AttemptTimeout.Timeout = TimeSpan.FromSeconds(5);
            resilience.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(12);
        }, apiKey);
        await using var provider = services.BuildServiceProvider();
        try
        {
            var workers = await provider.GetRequiredService<RenderFarmClient>().GetWorkersAsync(cancellationToken);
            return [.. workers.Where(w => w.Live)];
        }
        catch (Exception ex) when (ex is HttpRequestException or RenderFarmApiException or ExecutionRejectedException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Prints each pushed file as it completes.</summary>
    private sealed class FileLines(TextWriter output) : IProgress<ModelFileTransferred>
    {
        public void Report(ModelFileTransferred value) => output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  [{value.FilesDone}/{value.FileCount}] {value.File.Path}  {ByteSize.Format(value.File.Size)}  sha256 {value.File.Sha256[..16]}…"));
    }

    /// <summary>
    /// Which store the model verbs use. <c>auto</c>: the distributed farm's S3 when <c>RENDERFARM_S3_ENDPOINT</c> is set
    /// (the <c>deploy/local/services</c> settings, with the other <c>RENDERFARM_S3_*</c> and <c>Storage__*</c>
    /// variables), else the embedded farm's local folder under <c>--data</c> (<c>DATA/artifacts</c>, as
    /// <c>renderfarm serve</c> keeps it).
    /// </summary>
    private sealed record ModelStore(string Kind, string? DataRoot)
    {
        public const string Auto = "auto";
        public const string S3 = "s3";
        public const string Local = "local";

        public static Option<string> CreateStoreOption()
        {
            var option = new Option<string>("--store")
            {
                Description = "auto (S3 when RENDERFARM_S3_ENDPOINT is set, else the embedded farm's folder), s3 (the RENDERFARM_S3_* settings) or local (DATA/artifacts of `renderfarm serve`).",
                DefaultValueFactory = _ => Auto,
            };
            option.AcceptOnlyFromAmong(Auto, S3, Local);
            return option;
        }

        public static Option<string?> CreateDataOption() => new("--data")
        {
            Description = $"The embedded farm's data folder, for the local store (default: $RENDERFARM_HOME/data or {EmbeddedFarm.DefaultDataRoot()}).",
        };

        /// <summary>
        /// Runs <paramref name="action"/> with the chosen store and a description of it; store failures become exit 1,
        /// bad settings and a model already in the store exit 2. A local store that does not exist yet is passed as null
        /// unless <paramref name="createIfMissing"/>.
        /// </summary>
        public async Task<int> RunAsync(ParseResult result, bool createIfMissing, Func<IArtifactStore?, string, Task<int>> action, CancellationToken cancellationToken)
        {
            var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
            var useS3 = Kind == S3 || (Kind == Auto && configuration["RENDERFARM_S3_ENDPOINT"] is { Length: > 0 });
            IArtifactStore? store = null;
            string description;
            if (useS3)
            {
                var options = new StorageOptions { Provider = StorageProvider.S3 };
                configuration.GetSection(StorageOptions.SectionName).Bind(options);
                options.Provider = StorageProvider.S3;
                StorageServiceCollectionExtensions.ApplyFarmEnvironmentNames(options, configuration);
                if (new StorageOptionsValidator().Validate(null, options) is { Failed: true } invalid)
                {
                    return result.Fail(ExitCodes.InvalidInput, string.Join(Environment.NewLine + "  ", ["the S3 settings are incomplete:", .. invalid.Failures ?? []]));
                }

                store = new S3ArtifactStore(options);
                description = $"S3 bucket '{options.Bucket}' at {options.Endpoint}";
            }
            else
            {
                var root = Path.Combine(Path.GetFullPath(DataRoot ?? EmbeddedFarm.DefaultDataRoot()), EmbeddedFarm.ArtifactsFolder);
                description = $"the local store {root}";
                if (createIfMissing || Directory.Exists(root))
                {
                    store = new LocalFolderArtifactStore(root);
                }
            }

            try
            {
                return await action(store, description);
            }
            catch (ModelAlreadyInStoreException ex)
            {
                return result.Fail(ExitCodes.InvalidInput, ex.Message);
            }
            catch (ArgumentException ex)
            {
                return result.Fail(ExitCodes.InvalidInput, ex.Message);
            }
            catch (Exception ex) when (ex is ArtifactStoreException or IOException or UnauthorizedAccessException)
            {
                return result.Fail(ExitCodes.Failure, $"{description}: {ex.Message}");
            }
            finally
            {
                (store as IDisposable)?.Dispose();
            }
        }
    }
}
