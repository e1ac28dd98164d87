using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using System.Globalization;
using RenderFarm.Coordinator.Extensions;
using RenderFarm.Dashboard;
using RenderFarm.Messaging;
using RenderFarm.Storage;
using RenderFarm.Telemetry;
using RenderFarm.Worker;
using RenderFarm.Worker.Extensions;

namespace RenderFarm.Cli.Farm;

/// <summary>Where and how the embedded farm runs.</summary>
/// <param name="Urls">Kestrel addresses (<c>;</c>-separated); port 0 picks a free port.</param>
/// <param name="Workers">In-process workers (the worker library's slots).</param>
/// <param name="DataRoot">Holds the SQLite database, the artifacts and (unless <paramref name="ModelsRoot"/>) the models.</param>
/// <param name="ModelsRoot">Folder of model folders; the tiny model is generated there when a job names it.</param>
/// <param name="MemoryBudget">Each in-process worker's memory budget (<c>Worker:MemoryBudget</c>: a size or a share of free memory); null: none.</param>
/// <param name="PreviewInterval">Least time between two previews of a running item (<c>Worker:PreviewInterval</c>); zero turns them off; null: the worker's default.</param>
/// <param name="Watermark">The farm's invisible watermark text (<c>Worker:Watermark</c>); null for none.</param>
/// <param name="RequireApiKeys">Whether every route but the probes and metrics needs an API key (<c>Coordinator:Auth:RequireApiKeys</c>).</param>
internal sealed record EmbeddedFarmSettings(string Urls, int Workers, string DataRoot, string ModelsRoot, string? MemoryBudget = null, TimeSpan? PreviewInterval = null, string? Watermark = null, bool RequireApiKeys = false);

/// <summary>
/// The embedded farm: the coordinator's own composition (<c>AddCoordinator</c>, <c>MapCoordinatorApi</c>, the dashboard) with the
/// providers that need no services (SQLite, MassTransit's in-memory transport, a local folder) and the worker's slots
/// in the same process, on the same bus.
/// </summary>
internal static class EmbeddedFarm
{
    public const string DefaultUrls = "http://127.0.0.1:5180";

    public const string ServiceName = "renderfarm-serve";

    public const string DatabaseFile = "renderfarm.db";

    public const string ArtifactsFolder = "artifacts";

    public const string ModelsFolder = "models";

    private static readonly Dictionary<string, string?> QuietLogging = new()
    {
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:Microsoft.EntityFrameworkCore"] = "Warning",
        ["Logging:LogLevel:MassTransit"] = "Warning",
    };

    /// <summary><c>$RENDERFARM_HOME/data</c>, else <c>$XDG_DATA_HOME/renderfarm</c>, else <c>~/.local/share/renderfarm</c>.</summary>
    public static string DefaultDataRoot()
    {
        if (Environment.GetEnvironmentVariable("RENDERFARM_HOME") is { Length: > 0 } home)
        {
            return Path.Combine(home, "data");
        }

        var data = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        if (string.IsNullOrWhiteSpace(data))
        {
            data = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        }

        return Path.Combine(data, "renderfarm");
    }

    /// <summary>
    /// Configuration that makes the coordinator and the worker embedded. It is added last, so it wins over
    /// environment variables (a shell with <c>deploy/local/services</c> settings exported must not turn the embedded
    /// farm distributed); everything else (<c>Coordinator:*</c>, <c>Worker:*</c> limits) can still be set by environment.
    /// </summary>
    public static Dictionary<string, string?> Settings(EmbeddedFarmSettings farm)
    {
        ArgumentNullException.ThrowIfNull(farm);
        var settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Sqlite",
            ["Database:SqlitePath"] = Path.Combine(farm.DataRoot, DatabaseFile),
            ["Database:MigrateOnStart"] = "true",
            [$"{BusOptions.SectionName}:{nameof(BusOptions.Transport)}"] = nameof(BusTransport.InMemory),
            [$"{StorageOptions.SectionName}:{nameof(StorageOptions.Provider)}"] = nameof(StorageProvider.Local),
            [$"{StorageOptions.SectionName}:{nameof(StorageOptions.LocalRoot)}"] = Path.Combine(farm.DataRoot, ArtifactsFolder),
            [$"{WorkerOptions.SectionName}:{nameof(WorkerOptions.Slots)}"] = farm.Workers.ToString(CultureInfo.InvariantCulture),
            [$"{WorkerOptions.SectionName}:{nameof(WorkerOptions.ModelsRoot)}"] = farm.ModelsRoot,
            [$"{Coordinator.Auth.AuthOptions.SectionName}:{nameof(Coordinator.Auth.AuthOptions.RequireApiKeys)}"] = farm.RequireApiKeys ? "true" : "false",
        };

        if (farm.MemoryBudget is { } budget)
        {
            settings[$"{WorkerOptions.SectionName}:{nameof(WorkerOptions.MemoryBudget)}"] = budget;
        }

        if (farm.PreviewInterval is { } previews)
        {
            settings[$"{WorkerOptions.SectionName}:{nameof(WorkerOptions.PreviewInterval)}"] = previews.ToString("c", CultureInfo.InvariantCulture);
        }

        if (farm.Watermark is { } watermark)
        {
            settings[$"{WorkerOptions.SectionName}:{nameof(WorkerOptions.Watermark)}"] = watermark;
        }

        // The coordinator accepts only models it knows: the tiny model (generated on demand, and the default) and
        // whatever is installed under the models root.
        var models = InstalledModels(farm.ModelsRoot).Prepend(WorkerOptions.TinyModelName).Distinct(StringComparer.Ordinal).ToList();
        for (var i = 0; i < models.Count; i++)
        {
            settings[string.Create(CultureInfo.InvariantCulture, $"Coordinator:Models:{i}")] = models[i];
        }

        return settings;
    }

    /// <summary>Builds the embedded farm's web application (not started).</summary>
    public static WebApplication Build(EmbeddedFarmSettings farm)
    {
        ArgumentNullException.ThrowIfNull(farm);
        Directory.CreateDirectory(farm.DataRoot);

        // No command-line args: System.CommandLine already parsed them, and the host must not read them again.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });

        // Quiet defaults for a terminal (every SQL command and endpoint at Information drowns what matters); as the
        // first source, appsettings and Logging__LogLevel__* variables still override them.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = QuietLogging });
        builder.Configuration.AddInMemoryCollection(Settings(farm));
        builder.WebHost.UseUrls(farm.Urls);

        builder.AddRenderFarmTelemetry(ServiceName);
        builder.AddCoordinator();
        builder.Services.AddRenderFarmWorkerServices(builder.Configuration);

        // AddCoordinator has already called AddMassTransit (it may be called once per container), so the worker's
        // consumers join that bus through MassTransit's container registration (the worker's own list).
        builder.Services.AddRenderFarmWorkerConsumers();

        var app = builder.Build();
        app.MapRenderFarmHealth();
        app.MapCoordinatorApi();
        app.MapDashboard();
        return app;
    }

    /// <summary>
    /// True when every address is a loopback one (127.0.0.0/8, ::1, localhost): only this machine can connect, so the
    /// farm may run without keys. A wildcard (<c>*</c>, <c>+</c>, <c>0.0.0.0</c>, <c>[::]</c>) or any other host is not.
    /// </summary>
    public static bool IsLoopbackOnly(string urls)
    {
        ArgumentNullException.ThrowIfNull(urls);
        var addresses = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return addresses.Length > 0 && addresses.All(url =>
        {
            var host = Microsoft.AspNetCore.Http.BindingAddress.Parse(url).Host;
            return host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
                || (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip));
        });
    }

    private static IEnumerable<string> InstalledModels(string modelsRoot)
    {
        if (!Directory.Exists(modelsRoot))
        {
            return [];
        }

        // A model in the diffusers ONNX layout has a model_index.json; other folders (partial downloads) are not offered.
        return Directory.EnumerateDirectories(modelsRoot)
            .Where(d => File.Exists(Path.Combine(d, "model_index.json")))
            .Select(Path.GetFileName)
            .OfType<string>()
            .Order(StringComparer.Ordinal);
    }
}
