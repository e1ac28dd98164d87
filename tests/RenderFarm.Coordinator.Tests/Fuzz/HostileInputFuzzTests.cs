using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Coordinator.Tests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.Coordinator.Tests.Fuzz;

/// <summary>The coordinator with the A1111 wait cut short, so an accepted /sdapi/v1 generation answers quickly without workers.</summary>
public abstract class FuzzFixture : IAsyncLifetime
{
    /// <summary>Below the default, so a test can pass it cheaply; above the fuzz's multi-megabyte strings, so they reach validation.</summary>
    public const long MaxBodyBytes = 8_000_000;

    public CoordinatorFactory Factory { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var settings = new Dictionary<string, string?>(await DatabaseSettingsAsync())
        {
            ["Coordinator:Automatic1111:WaitTimeout"] = "00:00:00.300",
            ["Coordinator:Automatic1111:PollInterval"] = "00:00:00.100",
            ["Coordinator:RequestLimits:MaxBodyBytes"] = MaxBodyBytes.ToString(CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Default"] = "None",
        };
        Factory = new CoordinatorFactory(settings);
        _ = Factory.Server;
    }

    public virtual async Task DisposeAsync()
    {
        if (Factory is not null)
        {
            await Factory.DisposeAsync();
        }
    }

    protected abstract Task<IReadOnlyDictionary<string, string?>> DatabaseSettingsAsync();
}

/// <summary>On embedded SQLite, as <c>renderfarm serve</c> runs it.</summary>
public sealed class FuzzSqliteFixture : FuzzFixture
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "rf-coord-fuzz", Guid.NewGuid().ToString("N"));

    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseSettingsAsync() =>
        Task.FromResult<IReadOnlyDictionary<string, string?>>(new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Sqlite",
            ["Database:SqlitePath"] = Path.Combine(_folder, "renderfarm.db"),
        });

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }
}

/// <summary>On the real PostgreSQL of <c>deploy/local/services</c>, through the same fixture the behaviour tests use for its database.</summary>
public sealed class FuzzPostgresFixture : FuzzFixture
{
    private readonly PostgresCoordinatorFixture _database = new();

    protected override Task<IReadOnlyDictionary<string, string?>> DatabaseSettingsAsync() => _database.CreateDatabaseAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _database.DropDatabaseAsync();
    }
}

/// <summary>
/// Hostile input: generated requests (valid bodies mutated into wrong types, missing and extra fields, huge and
/// non-finite numbers, deep nesting, multi-megabyte strings, invalid base64, invalid and bomb images; garbage route
/// values; wrong methods and content types) to every route the running app maps. The coordinator must never answer
/// 5xx, never hang, keep its memory bounded, and answer every 4xx as ProblemDetails (A1111's error shapes on /sdapi/v1).
/// Set RENDERFARM_FUZZ_SEED to replay a run; every failure prints the seed and the request's number.
/// </summary>
public abstract class HostileInputFuzzTests<TFixture>(TFixture fixture, ITestOutputHelper output)
    where TFixture : FuzzFixture
{
    /// <summary>How many requests this database's run sends.</summary>
    protected abstract int Requests { get; }

    /// <summary>The routes mapped today number well above this; the floor keeps a broken enumeration from passing on nothing.</summary>
    private const int MinimumRoutes = 25;

    // What the run may leave behind in the heap after a full collection, not counting byte and char arrays of the
    // shared array pool's sizes (see HeapCensus): its largest bodies are 8 MB and four run at once, so anything near
    // this is memory the server kept. Measured as growth over the run, since the heap also holds other test classes'
    // hosts. The pool-sized arrays are reported, not bounded: their retention is the runtime's policy, not the server's.
    private const long ServerGrowthBoundBytes = 128L * 1024 * 1024;
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(10);
    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

    [Fact]
    public async Task Every_route_survives_generated_hostile_requests()
    {
        var seed = Environment.GetEnvironmentVariable("RENDERFARM_FUZZ_SEED") is { Length: > 0 } s
            ? int.Parse(s, CultureInfo.InvariantCulture)
            : 20261203;
        output.WriteLine($"Fuzz seed {seed} (override with RENDERFARM_FUZZ_SEED), {Requests} requests.");

        var routes = Routes(fixture.Factory.Services);
        output.WriteLine($"{routes.Count} routes: {string.Join(", ", routes.Select(r => $"{string.Join('|', r.Methods)} {r.Pattern.RawText}"))}");
        routes.Count.ShouldBeGreaterThanOrEqualTo(MinimumRoutes);

        using var client = fixture.Factory.CreateClient();
        client.Timeout = Timeout.InfiniteTimeSpan;
        var jobId = await ExistingJobAsync(client);
        var failures = new ConcurrentQueue<string>();
        var perRoute = new ConcurrentDictionary<string, int>();
        var kinds = new ConcurrentDictionary<string, int>();
        var clock = System.Diagnostics.Stopwatch.StartNew();

        async Task SendAsync(int from, int count) =>
            await Parallel.ForEachAsync(Enumerable.Range(from, count), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (n, _) =>
            {
                // Each request draws from its own generator so that one can be replayed alone, whatever ran beside it.
                var random = new Random(HashCode.Combine(seed, n));
                var route = routes[n % routes.Count];
                var generated = new RequestGenerator(random, jobId).Generate(route);
                perRoute.AddOrUpdate($"{string.Join('|', route.Methods)} {route.Pattern.RawText}", 1, (_, c) => c + 1);
                var failure = await SendAndJudgeAsync(client, route, generated);
                if (failure is not null)
                {
                    kinds.AddOrUpdate($"{generated.Method} {route.Pattern.RawText} → {failure[..Math.Min(failure.Length, 60)]}", 1, (_, c) => c + 1);
                    failures.Enqueue($"#{n} (seed {seed}) {generated.Method} {Excerpt(generated.Path)} [{generated.ContentType}] {Excerpt(generated.Body)}: {failure}");
                }
            });

        var before = HeapCensus.Take();
        await SendAsync(0, Requests);

        output.WriteLine($"{Requests} requests in {clock.Elapsed.TotalSeconds:F1} s.");
        foreach (var (kind, count) in kinds.OrderByDescending(k => k.Value))
        {
            output.WriteLine($"FAIL {count,5} × {kind}");
        }

        foreach (var (pattern, count) in perRoute.OrderBy(p => p.Key))
        {
            output.WriteLine($"{count,6} {pattern}");
        }

        var after = HeapCensus.Take();
        output.WriteLine($"Managed heap after a full collection: {before.OtherBytes / (1024 * 1024)} MiB before the run and {after.OtherBytes / (1024 * 1024)} MiB after "
            + $"(growth bound {ServerGrowthBoundBytes / (1024 * 1024)} MiB), besides arrays of the shared pool's sizes: {before.PoolSizedArrayBytes / (1024 * 1024)} MiB before, {after.PoolSizedArrayBytes / (1024 * 1024)} MiB after.");

        failures.ShouldBeEmpty($"{failures.Count} bad answers; first ones:\n{string.Join("\n", failures.Take(20))}");
        (after.OtherBytes - before.OtherBytes).ShouldBeLessThan(ServerGrowthBoundBytes, "the heap grew by more than pooled buffers over the run: the server keeps something");
        perRoute.Count.ShouldBe(routes.Count);
    }

    internal static List<Route> Routes(IServiceProvider services) =>
    [
        .. services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Select(e => new Route(e.RoutePattern, e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods.ToList() ?? ["GET"]))
            // The dashboard's SPA fallback answers every unknown path; the generator reaches it through garbage paths anyway.
            .Where(r => r.Pattern.RawText is not null)
            .GroupBy(r => (r.Pattern.RawText, string.Join('|', r.Methods)))
            .Select(g => g.First())
            .OrderBy(r => r.Pattern.RawText, StringComparer.Ordinal),
    ];

    private static async Task<Guid> ExistingJobAsync(HttpClient client)
    {
        var job = await client.SubmitAsync(JobsClient.ValidJob("fuzz target"));
        return job.Id();
    }

    private static async Task<string?> SendAndJudgeAsync(HttpClient client, Route route, GeneratedRequest generated)
    {
        using var request = new HttpRequestMessage(new HttpMethod(generated.Method), generated.Path);
        if (generated.Body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(generated.Body));
            if (generated.ContentType is not null)
            {
                request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(generated.ContentType);
            }
        }

        using var guard = new CancellationTokenSource(HangGuard);
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, guard.Token);
        }
        catch (OperationCanceledException) when (guard.IsCancellationRequested)
        {
            return $"no answer within {HangGuard}";
        }
        catch (Exception ex)
        {
            return $"threw {ex.GetType().Name}: {ex.Message}";
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            var mediaType = response.Content.Headers.ContentType?.MediaType;
            if (mediaType == "text/event-stream")
            {
                // A stream never ends by itself; its headers are the answer. Disposing the response cancels it.
                return status is >= 200 and < 300 ? null : $"event stream with status {status}";
            }

            string body;
            try
            {
                body = await response.Content.ReadAsStringAsync(guard.Token);
            }
            catch (OperationCanceledException) when (guard.IsCancellationRequested)
            {
                return $"status {status} but the body did not end within {HangGuard}";
            }

            var a1111 = generated.Path.StartsWith("/sdapi/v1", StringComparison.Ordinal);
            if (status >= 500)
            {
                // The one 5xx the product promises: an accepted A1111 generation no worker finished within WaitTimeout.
                var promisedTimeout = a1111 && status == 504 && body.Contains("\"TimeoutError\"", StringComparison.Ordinal);
                // And the dead-letter routes' 503 on the in-memory bus: the server holds no dead letters to show, whatever the request.
                var noDeadLetterStore = status == 503 && route.Pattern.RawText!.StartsWith("/v1/dead-letters", StringComparison.Ordinal)
                    && body.Contains("in-memory bus", StringComparison.Ordinal);
                return promisedTimeout || noDeadLetterStore ? null : $"status {status}: {Excerpt(body)}";
            }

            // The OpenAPI document and Scalar are served by their libraries, which answer a 404 in plain text.
            var documentation = route.Pattern.RawText!.StartsWith("/openapi/", StringComparison.Ordinal) || route.Pattern.RawText.StartsWith("/scalar/", StringComparison.Ordinal);
            if (status >= 400 && !documentation)
            {
                return a1111 && IsA1111Error(body) || IsProblemDetails(mediaType, body)
                    ? null
                    : $"status {status} ({mediaType}) is not a ProblemDetails{(a1111 ? " nor an A1111 error" : "")}: {Excerpt(body)}";
            }

            return null;
        }
    }

    private static bool IsProblemDetails(string? mediaType, string body)
    {
        if (mediaType != "application/problem+json")
        {
            return false;
        }

        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("status", out _) && doc.RootElement.TryGetProperty("title", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool IsA1111Error(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            return root.ValueKind == JsonValueKind.Object && root.TryGetProperty("detail", out var detail)
                && (detail.ValueKind == JsonValueKind.Array || root.TryGetProperty("error", out _));
        }
        catch (JsonException)
        {
            return false;
        }
    }

    internal static string Excerpt(string? text) => text is null ? "(no body)" : text.Length <= 300 ? text : $"{text[..300]}… ({text.Length} chars)";
}

/// <summary>The fuzz runs alone, so the memory it measures is its server's, not other test classes' hosts'.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FuzzCollection
{
    public const string Name = "Hostile-input fuzz";
}

/// <summary>The bulk of the fuzz, on SQLite.</summary>
[Collection(FuzzCollection.Name)]
public sealed class SqliteHostileInputFuzzTests(FuzzSqliteFixture fixture, ITestOutputHelper output)
    : HostileInputFuzzTests<FuzzSqliteFixture>(fixture, output), IClassFixture<FuzzSqliteFixture>
{
    protected override int Requests => 10_000;
}

/// <summary>A smaller share on PostgreSQL, whose types and errors differ from SQLite's.</summary>
[Collection(FuzzCollection.Name)]
public sealed class PostgresHostileInputFuzzTests(FuzzPostgresFixture fixture, ITestOutputHelper output)
    : HostileInputFuzzTests<FuzzPostgresFixture>(fixture, output), IClassFixture<FuzzPostgresFixture>
{
    protected override int Requests => 2_000;
}

public sealed record Route(RoutePattern Pattern, IReadOnlyList<string> Methods);

internal sealed record GeneratedRequest(string Method, string Path, string? ContentType, string? Body);

/// <summary>Builds one hostile request for a route from a seeded generator.</summary>
internal sealed class RequestGenerator(Random random, Guid jobId)
{
    private static readonly string Png = TestPng.Base64;
    private static readonly Lazy<string> DeclaredHuge = new(() => Convert.ToBase64String(HostileImages.Declaring(100_000, 100_000)));
    private static readonly Lazy<string> DeclaredNegative = new(() => Convert.ToBase64String(HostileImages.Declaring(-1, int.MinValue)));
    private static readonly Lazy<string> Bomb = new(() => Convert.ToBase64String(HostileImages.Bomb));
    private static readonly Lazy<string> MegaString = new(() => new string('\u00e9', 3 * 1024 * 1024));

    private readonly List<string> _raw = [];

    public GeneratedRequest Generate(Route route)
    {
        var method = random.NextDouble() < 0.8 ? route.Methods[random.Next(route.Methods.Count)] : Methods[random.Next(Methods.Length)];
        var path = PathFor(route.Pattern) + Query();
        if (method is "GET" or "HEAD" or "DELETE" or "OPTIONS" && random.NextDouble() < 0.8)
        {
            return new GeneratedRequest(method, path, null, null);
        }

        var body = Body(route.Pattern.RawText ?? "");
        var contentType = random.Next(10) switch
        {
            0 => "text/plain",
            1 => "application/x-www-form-urlencoded",
            2 => null,
            3 => "application/json; charset=utf-16",
            4 => "multipart/form-data; boundary=zzz",
            _ => "application/json",
        };
        return new GeneratedRequest(method, path, contentType, body);
    }

    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

    private string PathFor(RoutePattern pattern) => RoutePaths.Fill(pattern, parameter => Uri.EscapeDataString(RouteValue(parameter)));

    private string RouteValue(RoutePatternParameterPart parameter)
    {
        var isGuid = RoutePaths.IsGuid(parameter);
        var isLong = RoutePaths.IsInteger(parameter);
        return random.Next(10) switch
        {
            0 or 1 when isGuid => jobId.ToString(),
            2 or 3 when isGuid => Guid.NewGuid().ToString(),
            0 or 1 when isLong => random.Next(0, 5).ToString(CultureInfo.InvariantCulture),
            2 when isLong => long.MaxValue.ToString(CultureInfo.InvariantCulture),
            3 when isLong => long.MinValue.ToString(CultureInfo.InvariantCulture),
            4 => "99999999999999999999999999",
            5 => "-1",
            6 => new string('a', random.Next(1, 5000)),
            7 => Guid.Empty.ToString(),
            // No NUL: the in-process test server refuses it on the client side before the app sees it.
            8 => "%00../..'; DROP TABLE jobs;--",
            _ => RandomText(random.Next(0, 40)),
        };
    }

    private string Query()
    {
        if (random.NextDouble() < 0.6)
        {
            return "";
        }

        string[] names = ["limit", "after", "state", "cursor", "images_limit", "imagesLimit", "offset", "skip_current_image", "queue", "count"];
        var parts = Enumerable.Range(0, random.Next(1, 4)).Select(_ =>
            $"{names[random.Next(names.Length)]}={Uri.EscapeDataString(Scalar())}");
        return "?" + string.Join('&', parts);
    }

    private string Scalar() => random.Next(12) switch
    {
        0 => "-1",
        1 => "0",
        2 => int.MaxValue.ToString(CultureInfo.InvariantCulture),
        3 => long.MinValue.ToString(CultureInfo.InvariantCulture),
        4 => "1e400",
        5 => "NaN",
        6 => Guid.NewGuid().ToString(),
        7 => new string('9', 400),
        8 => "true",
        9 => "",
        _ => RandomText(random.Next(1, 20)),
    };

    private string Body(string pattern)
    {
        if (random.NextDouble() < 0.12)
        {
            return WholeBodyJunk();
        }

        var body = ValidBody(pattern);
        var mutations = random.Next(0, 4);
        for (var i = 0; i < mutations; i++)
        {
            Mutate(body);
        }

        var text = body.ToJsonString();
        for (var i = 0; i < _raw.Count; i++)
        {
            text = text.Replace($"\"\\u0001raw{i}\"", _raw[i], StringComparison.Ordinal);
        }

        return text;
    }

    private JsonObject ValidBody(string pattern) => pattern switch
    {
        _ when pattern.StartsWith("/sdapi/v1/txt2img", StringComparison.Ordinal) => A1111(),
        _ when pattern.StartsWith("/sdapi/v1/img2img", StringComparison.Ordinal) => WithImages(A1111()),
        _ when pattern.StartsWith("/sdapi/v1/options", StringComparison.Ordinal) => new JsonObject { ["sd_model_checkpoint"] = "tiny-sd" },
        _ when pattern.StartsWith("/sdapi/v1/png-info", StringComparison.Ordinal) => new JsonObject { ["image"] = Png },
        _ when pattern.StartsWith("/sdapi/v1/interrupt", StringComparison.Ordinal) => [],
        _ => random.Next(4) switch
        {
            0 => WithFarmImages(JobsClient.ValidJob()),
            1 => Swept(JobsClient.ValidJob()),
            _ => JobsClient.ValidJob(),
        },
    };

    private static JsonObject A1111() => new() { ["prompt"] = "a fox", ["width"] = 64, ["height"] = 64, ["steps"] = 2, ["sampler_name"] = "Euler" };

    private JsonObject WithImages(JsonObject body)
    {
        body["init_images"] = new JsonArray(Png);
        if (random.Next(2) == 0)
        {
            body["mask"] = Png;
        }

        body["denoising_strength"] = 0.5;
        return body;
    }

    private JsonObject WithFarmImages(JsonObject body)
    {
        body["mode"] = random.Next(2) == 0 ? "img2img" : "inpaint";
        body["initImage"] = Png;
        body["mask"] = Png;
        body["strength"] = 0.5;
        return body;
    }

    private static JsonObject Swept(JsonObject body)
    {
        body["sweep"] = new JsonObject { ["seeds"] = new JsonArray(1, 2), ["steps"] = new JsonArray(2, 3), ["prompts"] = new JsonArray("a", "b") };
        return body;
    }

    private void Mutate(JsonObject body)
    {
        var names = body.Select(p => p.Key).ToList();
        var roll = random.Next(10);
        if (roll == 0 && names.Count > 0)
        {
            body.Remove(names[random.Next(names.Count)]);
            return;
        }

        if (roll == 1 || names.Count == 0)
        {
            body[random.Next(2) == 0 ? "extra_" + RandomText(6) : RandomText(random.Next(0, 10))] = Value(depth: 0);
            return;
        }

        var name = names[random.Next(names.Count)];
        if (body[name] is JsonArray array && array.Count > 0 && random.Next(2) == 0)
        {
            array[random.Next(array.Count)] = Value(depth: 0);
        }
        else if (body[name] is JsonObject inner && inner.Count > 0 && random.Next(2) == 0)
        {
            Mutate(inner);
        }
        else
        {
            body[name] = Value(depth: 0);
        }
    }

    private JsonNode? Value(int depth) => random.Next(depth > 2 ? 24 : 27) switch
    {
        0 => null,
        1 => true,
        2 => int.MaxValue,
        3 => int.MinValue,
        4 => long.MaxValue,
        5 => double.MaxValue,
        6 => -double.Epsilon,
        7 => Raw("1e400"),
        8 => Raw("-1e400"),
        9 => Raw(new string('9', 500)),
        10 => "NaN",
        11 => "Infinity",
        12 => "-Infinity",
        13 => random.Next(-1000, 100_000),
        14 => random.NextDouble() * 2 - 0.5,
        15 => RandomText(random.Next(0, 50)),
        16 => "",
        17 => random.Next(200) == 0 ? MegaString.Value : new string('x', random.Next(1000, 20_000)),
        18 => "not base64 at all!",
        19 => Convert.ToBase64String(Enumerable.Range(0, random.Next(1, 200)).Select(_ => (byte)random.Next(256)).ToArray()),
        20 => random.Next(3) switch { 0 => DeclaredHuge.Value, 1 => DeclaredNegative.Value, _ => random.Next(20) == 0 ? Bomb.Value : TestPng.TruncatedBase64 },
        21 => "data:image/png;base64," + Png,
        22 => Png[..^3],
        23 => Raw(Nested(random.Next(2) == 0 ? random.Next(60, 80) : random.Next(500, 5000))),
        24 => new JsonArray(Value(depth + 1), Value(depth + 1)),
        25 => new JsonObject { ["a"] = Value(depth + 1), ["prompt"] = Value(depth + 1) },
        _ => new JsonArray(),
    };

    /// <summary>Text substituted verbatim after serialization (numbers JSON can write but .NET cannot hold, nesting past the writer's depth).</summary>
    private JsonNode Raw(string json)
    {
        _raw.Add(json);
        return "\u0001raw" + (_raw.Count - 1).ToString(CultureInfo.InvariantCulture);
    }

    private string Nested(int depth) => random.Next(2) == 0
        ? new string('[', depth) + new string(']', depth)
        : string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);

    private string WholeBodyJunk() => random.Next(10) switch
    {
        0 => "",
        1 => "null",
        2 => "[1,2,3]",
        3 => "{not json",
        4 => Nested(random.Next(10, 100_000)),
        5 => "\"" + new string('z', random.Next(1, 100_000)) + "\"",
        6 => RandomText(random.Next(1, 2000)),
        7 => "{\"prompt\":\"\ud800\"}",
        8 => "{\"prompt\":\"a\",\"prompt\":1}",
        _ => "\uFEFF{\"prompt\":\"x\"} trailing",
    };

    private string RandomText(int length)
    {
        var chars = new char[length];
        for (var i = 0; i < length; i++)
        {
            chars[i] = random.Next(8) == 0 ? (char)random.Next(0x20, 0xD7FF) : (char)random.Next(0x20, 0x7F);
        }

        return new string(chars);
    }
}
