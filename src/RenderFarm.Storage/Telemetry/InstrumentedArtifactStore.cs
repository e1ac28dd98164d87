using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace RenderFarm.Storage.Telemetry;

/// <summary>
/// Times every call of the store it wraps, counts its failures and records a span per call, under the
/// <c>RenderFarm.Storage</c> source and meter that the hosts' telemetry subscribes to. Wraps both the S3 and the
/// local folder store, so embedded and distributed farms report the same series.
/// </summary>
/// <remarks>
/// A decorator rather than the Minio SDK's own hooks: the local folder store has none, and the duration an operator
/// cares about is the whole call (a multipart upload is many HTTP requests). This project references no farm
/// telemetry assembly (dependencies point inward), so it declares its own source and meter by the shared name.
/// </remarks>
public sealed class InstrumentedArtifactStore : IArtifactStore
{
    /// <summary>Source and meter name; equal to <c>RenderFarmDiagnostics.Storage</c>.</summary>
    public const string SourceName = "RenderFarm.Storage";

    /// <summary>Histogram of call durations in seconds, by operation (and <c>error.type</c> when it failed).</summary>
    public const string DurationMetric = "renderfarm.storage.request.duration";

    /// <summary>Counter of failed calls, by operation and <c>error.type</c>; a missing key on read is not a failure.</summary>
    public const string ErrorsMetric = "renderfarm.storage.request.errors";

    /// <summary>Attribute naming the operation: put, read, exists, url, list, delete.</summary>
    public const string OperationTag = "renderfarm.storage.operation";

    private const string ErrorTypeTag = "error.type";

    private static readonly ActivitySource Source = new(SourceName);
    private static readonly Meter Meter = new(SourceName);

    // Bucket bounds for object-store calls: a small PNG on a LAN takes milliseconds, a model file minutes.
    private static readonly Histogram<double> Duration = Meter.CreateHistogram(DurationMetric, "s", "Duration of artifact store calls.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] });

    private static readonly Counter<long> Errors = Meter.CreateCounter<long>(ErrorsMetric, "{error}", "Failed artifact store calls.");

    private static readonly string[] Operations = ["put", "read", "exists", "url", "list", "delete"];

    private readonly IArtifactStore _inner;

    static InstrumentedArtifactStore()
    {
        // Every operation's error series exists from the start at 0, so rate() and the dashboard show "no errors"
        // rather than "no data" on a healthy farm.
        foreach (var operation in Operations)
        {
            Errors.Add(0, new KeyValuePair<string, object?>(OperationTag, operation));
        }
    }

    /// <summary>The store whose calls are measured.</summary>
    public IArtifactStore Inner => _inner;

    public InstrumentedArtifactStore(IArtifactStore inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
    }

    public Task PutAsync(string key, Stream content, string contentType, CancellationToken cancellationToken) =>
        RunAsync("put", key, () => _inner.PutAsync(key, content, contentType, cancellationToken));

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken) =>
        RunAsync("read", key, () => _inner.OpenReadAsync(key, cancellationToken));

    public Task<bool> ExistsAsync(string key, CancellationToken cancellationToken) =>
        RunAsync("exists", key, () => _inner.ExistsAsync(key, cancellationToken));

    public Task<Uri?> GetDownloadUrlAsync(string key, TimeSpan lifetime, CancellationToken cancellationToken) =>
        RunAsync("url", key, () => _inner.GetDownloadUrlAsync(key, lifetime, cancellationToken));

    public Task DeleteAsync(string key, CancellationToken cancellationToken) =>
        RunAsync("delete", key, () => _inner.DeleteAsync(key, cancellationToken));

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var call = new Call("list", prefix);
        await using var items = _inner.ListAsync(prefix, cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            bool more;
            try
            {
                more = await items.MoveNextAsync();
            }
            catch (Exception ex)
            {
                call.Fail(ex);
                throw;
            }

            if (!more)
            {
                yield break;
            }

            yield return items.Current;
        }
    }

    private static async Task RunAsync(string operation, string key, Func<Task> run)
    {
        using var call = new Call(operation, key);
        try
        {
            await run();
        }
        catch (Exception ex)
        {
            call.Fail(ex);
            throw;
        }
    }

    private static async Task<T> RunAsync<T>(string operation, string key, Func<Task<T>> run)
    {
        using var call = new Call(operation, key);
        try
        {
            return await run();
        }
        catch (Exception ex)
        {
            call.Fail(ex);
            throw;
        }
    }

    /// <summary>One timed call: a span while it runs, a duration when it ends, an error count if it failed.</summary>
    private sealed class Call : IDisposable
    {
        private readonly string _operation;
        private readonly Activity? _activity;
        private readonly long _started = Stopwatch.GetTimestamp();
        private string? _error;

        public Call(string operation, string key)
        {
            _operation = operation;
            _activity = Source.StartActivity("storage " + operation, ActivityKind.Client);
            _activity?.SetTag("renderfarm.storage.key", key);
        }

        public void Fail(Exception exception)
        {
            // A missing key is an answer (the caller asked whether it is there), not a fault of the store.
            if (exception is ArtifactNotFoundException or OperationCanceledException)
            {
                return;
            }

            _error = exception.GetType().Name;
            _activity?.SetStatus(ActivityStatusCode.Error, exception.Message);
            Errors.Add(1, new KeyValuePair<string, object?>(OperationTag, _operation), new KeyValuePair<string, object?>(ErrorTypeTag, _error));
        }

        public void Dispose()
        {
            var elapsed = Stopwatch.GetElapsedTime(_started).TotalSeconds;
            if (_error is null)
            {
                Duration.Record(elapsed, new KeyValuePair<string, object?>(OperationTag, _operation));
            }
            else
            {
                Duration.Record(elapsed, new KeyValuePair<string, object?>(OperationTag, _operation), new KeyValuePair<string, object?>(ErrorTypeTag, _error));
            }

            _activity?.Dispose();
        }
    }
}
