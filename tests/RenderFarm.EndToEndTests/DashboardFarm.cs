using System.Text.RegularExpressions;
using Microsoft.Playwright;
using RenderFarm.Client;

namespace RenderFarm.EndToEndTests;

/// <summary>
/// A real embedded farm (<c>renderfarm serve --workers 2</c>, in-process: SQLite, the in-memory bus, a local
/// folder and two workers rendering the generated tiny model) and Debian's Chromium driven by Playwright.
/// </summary>
/// <remarks>
/// Playwright is pointed at the system browser (<see cref="ChromiumEnvironmentVariable"/>, default
/// <c>/usr/bin/chromium</c>); it never downloads one. A missing browser fails the tests with the fix, rather than
/// skipping them.
/// </remarks>
public sealed partial class DashboardFarm : IAsyncLifetime
{
    /// <summary>Overrides the Chromium executable.</summary>
    public const string ChromiumEnvironmentVariable = "RENDERFARM_CHROMIUM";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);

    private readonly string _root = Directory.CreateTempSubdirectory("rf-e2e-").FullName;
    private readonly CancellationTokenSource _stop = new();
    private readonly StringWriter _buffer = new();
    private TextWriter _output = null!;
    private Task<int>? _serve;
    private IPlaywright? _playwright;

    public Uri Address { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Where the tests save screenshots (printed by each test that writes one).</summary>
    public string Screenshots { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    public string ServeOutput
    {
        get
        {
            lock (_output)
            {
                return _buffer.ToString();
            }
        }
    }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Screenshots);
        _output = TextWriter.Synchronized(_buffer);
        string[] args = ["serve", "--urls", "http://127.0.0.1:0", "--workers", "2", "--data", Path.Combine(_root, "data")];
        _serve = Task.Run(() => Cli.CliApp.RunAsync(args, _output, _output, _stop.Token));
        var deadline = DateTime.UtcNow + StartTimeout;
        while (Listening().Match(ServeOutput) is not { Success: true } match)
        {
            if (_serve.IsCompleted || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"renderfarm serve did not start: {ServeOutput}");
            }

            await Task.Delay(100);
        }

        Address = new Uri(Listening().Match(ServeOutput).Groups[1].Value);

        var chromium = Environment.GetEnvironmentVariable(ChromiumEnvironmentVariable) is { Length: > 0 } path ? path : "/usr/bin/chromium";
        if (!File.Exists(chromium))
        {
            throw new InvalidOperationException($"No Chromium at {chromium}: install Debian's chromium package (apt-get install -y chromium) or set {ChromiumEnvironmentVariable}.");
        }

        // Belt and braces: nothing here installs browsers, and this keeps any Playwright code path from trying.
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    public RenderFarmClient CreateClient() => new(new HttpClient { BaseAddress = Address });

    /// <summary>A fresh browser page (its own context: no shared cookies or storage) at the dashboard's <paramref name="hash"/>.</summary>
    public async Task<IPage> OpenAsync(string hash)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 } });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(120_000);
        await page.GotoAsync(new Uri(Address, "/dashboard/" + hash).ToString());
        return page;
    }

    public async Task<string> ScreenshotAsync(IPage page, string name)
    {
        ArgumentNullException.ThrowIfNull(page);
        var path = Path.Combine(Screenshots, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        await _stop.CancelAsync();
        if (_serve is not null)
        {
            await _serve;
        }

        _stop.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [GeneratedRegex(@"listening on (http://\S+)")]
    private static partial Regex Listening();
}
