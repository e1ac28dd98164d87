using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using System.CommandLine;
using RenderFarm.Cli.Farm;
using RenderFarm.Diffusion.Watermarking;
using RenderFarm.Worker.Memory;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm serve</c>: the whole farm in this process, with no external services.</summary>
internal static class ServeCommand
{
    public const int DefaultWorkers = 1;

    /// <summary>A day: past that "previews on" means nothing a user would see.</summary>
    private const double MaxPreviewIntervalSeconds = 86_400;

    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = "Addresses to listen on (';'-separated); port 0 picks a free one.", DefaultValueFactory = _ => EmbeddedFarm.DefaultUrls };
        var workers = new Option<int>("--workers") { Description = "In-process workers (render slots).", DefaultValueFactory = _ => DefaultWorkers };
        var data = new Option<string?>("--data") { Description = $"Folder for the database, images and models (default: $RENDERFARM_HOME/data or {EmbeddedFarm.DefaultDataRoot()})." };
        var models = new Option<string?>("--models") { Description = "Folder of model folders (default: DATA/models; the tiny model is generated there on first use)." };
        var memoryBudget = new Option<string?>("--memory-budget") { Description = "Memory each worker plans its renders with: a size (6GiB, 512MiB) or a share of free memory at start (50% or 0.5). Default: none (every render resident)." };

        var previewInterval = new Option<double?>("--preview-interval") { Description = "Seconds between two previews of a running item (a small JPEG of the latent, served at /v1/jobs/ID/items/INDEX/preview); 0 turns previews off. Default: the worker's (Worker:PreviewInterval, 1 s)." };

        var watermark = new Option<string?>("--watermark") { Description = "Embed an invisible watermark carrying TEXT (1 to 32 UTF-8 bytes) in every image of at least 256x256 the farm renders, except hires jobs (Worker:Watermark; docs/watermark.md)." };
        var requireKeys = new Option<bool>("--require-api-keys") { Description = "Require API keys (`renderfarm keys create --data DATA ...`) even on a loopback address." };
        var insecure = new Option<bool>("--insecure-no-auth") { Description = "Run without keys on a non-loopback address: anyone who can reach it can submit, read and delete every job." };

        var command = new Command("serve", "Run the farm on this machine: the coordinator's API with in-process workers, SQLite, an in-memory bus and a local image folder. Ctrl+C stops it; its data survives a restart. On a loopback address it runs open; on any other it requires API keys unless --insecure-no-auth.")
        {
            urls, workers, data, models, memoryBudget, previewInterval, watermark, requireKeys, insecure,
        };
        command.SetAction((result, cancellationToken) =>
        {
            if (result.GetValue(requireKeys) && result.GetValue(insecure))
            {
                return Task.FromResult(result.Fail(ExitCodes.InvalidInput, "give either --require-api-keys or --insecure-no-auth, not both."));
            }

            var loopback = EmbeddedFarm.IsLoopbackOnly(result.GetRequiredValue(urls));
            var root = Path.GetFullPath(result.GetValue(data) ?? EmbeddedFarm.DefaultDataRoot());
            return RunAsync(result, new EmbeddedFarmSettings(
                result.GetRequiredValue(urls),
                result.GetValue(workers),
                root,
                Path.GetFullPath(result.GetValue(models) ?? Path.Combine(root, EmbeddedFarm.ModelsFolder)),
                result.GetValue(memoryBudget),
                result.GetValue(previewInterval) is { } seconds && double.IsFinite(seconds) && seconds >= 0 && seconds <= MaxPreviewIntervalSeconds
                    ? TimeSpan.FromSeconds(seconds)
                    : null,
                result.GetValue(watermark),
                RequireApiKeys: result.GetValue(requireKeys) || (!loopback && !result.GetValue(insecure))), result.GetValue(previewInterval), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(ParseResult result, EmbeddedFarmSettings settings, double? previewSeconds, CancellationToken cancellationToken)
    {
        if (previewSeconds is { } seconds && settings.PreviewInterval is null)
        {
            return result.Fail(ExitCodes.InvalidInput, $"--preview-interval must be between 0 (off) and {MaxPreviewIntervalSeconds} seconds, got {seconds}.");
        }

        if (settings.Watermark is { } text && DwtDctWatermark.PayloadProblem(System.Text.Encoding.UTF8.GetBytes(text)) is { } watermarkProblem)
        {
            return result.Fail(ExitCodes.InvalidInput, $"--watermark: {watermarkProblem}");
        }

        if (settings.Workers is < 1 or > 64)
        {
            return result.Fail(ExitCodes.InvalidInput, $"--workers must be between 1 and 64, got {settings.Workers}.");
        }

        if (settings.MemoryBudget is { } budget && !MemoryBudgetSetting.TryParse(budget, out _, out var budgetError))
        {
            return result.Fail(ExitCodes.InvalidInput, $"--memory-budget {budgetError}.");
        }

        DataFolderLock? folderLock = null;
        WebApplication app;
        try
        {
            folderLock = DataFolderLock.TryAcquire(settings.DataRoot, out var holder);
            if (folderLock is null)
            {
                return result.Fail(ExitCodes.InvalidInput,
                    $"the data folder '{settings.DataRoot}' is in use by {holder}; stop it, or give this one another folder with --data.");
            }

            app = EmbeddedFarm.Build(settings);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            folderLock?.Dispose();
            return result.Fail(ExitCodes.InvalidInput, $"cannot use the data folder '{settings.DataRoot}': {ex.Message}");
        }

        using (folderLock)
        await using (app)
        {
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return ExitCodes.Success;
            }
            catch (IOException ex)
            {
                // Kestrel reports an address in use as an IOException.
                return result.Fail(ExitCodes.Failure, $"cannot listen on {settings.Urls}: {ex.Message}");
            }
            catch (Microsoft.Extensions.Options.OptionsValidationException ex)
            {
                return result.Fail(ExitCodes.InvalidInput, string.Join(Environment.NewLine + "  ", ["invalid settings:", .. ex.Failures]));
            }

            folderLock.Announce(app.Urls);
            var output = result.Out();
            output.WriteLine($"renderfarm serve: listening on {string.Join(' ', app.Urls)} with {settings.Workers} worker(s)");
            output.WriteLine($"  data: {settings.DataRoot}");
            output.WriteLine($"  models: {settings.ModelsRoot}");
            output.WriteLine(settings.RequireApiKeys
                ? $"  auth: API keys required (Authorization: Bearer KEY); make one with: renderfarm keys create --data {settings.DataRoot} --tenant NAME --role admin"
                : EmbeddedFarm.IsLoopbackOnly(settings.Urls)
                    ? "  auth: open (loopback only: anyone on this machine can use the farm; --require-api-keys turns keys on)"
                    : "  auth: OPEN on a non-loopback address (--insecure-no-auth): anyone who can reach it can submit, read and delete every job");
            if (settings.MemoryBudget is { } memory)
            {
                output.WriteLine($"  memory budget per worker: {MemoryBudgetSetting.Parse(memory)}");
            }
            if (settings.PreviewInterval == TimeSpan.Zero)
            {
                output.WriteLine("  previews: off");
            }
            output.WriteLine($"  try: renderfarm submit \"a red fox\" --width 64 --height 64 --steps 2 --farm {app.Urls.First()}{(settings.RequireApiKeys ? " --api-key KEY" : "")} --wait");
            output.WriteLine("Press Ctrl+C to stop.");
            output.Flush();

            // Ctrl+C cancels the token (System.CommandLine); the host then stops gracefully: workers finish or return
            // their items within their grace, and the coordinator flushes progress before closing the database.
            await app.WaitForShutdownAsync(cancellationToken);
        }

        return ExitCodes.Success;
    }
}
