using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RenderFarm.Client;

/// <summary>
/// Typed client of the coordinator's HTTP API (<c>/v1/jobs</c>, <c>/v1/images</c>, <c>/v1/workers</c>). Error responses
/// become <see cref="RenderFarmApiException"/>; a farm that cannot be reached surfaces as <see cref="HttpRequestException"/>.
/// Register it with <see cref="RenderFarmClientServiceCollectionExtensions.AddRenderFarmClient"/>, or wrap any
/// <see cref="HttpClient"/> whose <see cref="HttpClient.BaseAddress"/> is the farm (tests, one-off tools).
/// </summary>
public sealed class RenderFarmClient
{
    /// <summary>Header that makes a repeated submission return the job of the first one.</summary>
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    /// <summary>Header the farm sets on a response that replays an earlier submission.</summary>
    public const string IdempotentReplayedHeader = "Idempotent-Replayed";

    /// <summary>Most images the farm returns in one page of a job.</summary>
    public const int MaxImagesPerPage = 10_000;

    /// <summary>
    /// The JSON the coordinator speaks: camelCase, enums as names. NaN and Infinity are sent as the coordinator reads
    /// them, so its validator (not the serializer here) names the field and the fix.
    /// </summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Header of a preview response naming the step it shows.</summary>
    public const string PreviewStepHeader = "X-Preview-Step";

    /// <summary>Header of a preview response naming the item's steps in all.</summary>
    public const string PreviewTotalStepsHeader = "X-Preview-Total-Steps";

    private readonly HttpClient _http;

    /// <summary>Wraps <paramref name="httpClient"/>, whose <see cref="HttpClient.BaseAddress"/> must be the farm's address.</summary>
    public RenderFarmClient(HttpClient httpClient)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        if (httpClient.BaseAddress is null)
        {
            throw new ArgumentException("The HttpClient needs a BaseAddress: the farm's URL.", nameof(httpClient));
        }

        _http = httpClient;
    }

    /// <summary>The farm's address.</summary>
    public Uri BaseAddress => _http.BaseAddress!;

    /// <summary>
    /// Submits a job (<c>POST /v1/jobs</c>). With <paramref name="idempotencyKey"/>, a retried submission (after a
    /// time-out, say) returns the job of the first one instead of a second job.
    /// </summary>
    public async Task<SubmittedJob> SubmitJobAsync(SubmitJobRequest request, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var message = new HttpRequestMessage(HttpMethod.Post, "v1/jobs")
        {
            Content = JsonContent.Create(request, options: Json),
        };
        if (idempotencyKey is not null)
        {
            message.Headers.TryAddWithoutValidation(IdempotencyKeyHeader, idempotencyKey);
        }

        using var response = await _http.SendAsync(message, cancellationToken);
        var job = await ReadAsync<Job>(response, cancellationToken);
        var replayed = response.Headers.TryGetValues(IdempotentReplayedHeader, out var values)
            && values.Any(v => string.Equals(v, "true", StringComparison.OrdinalIgnoreCase));
        return new SubmittedJob(job, replayed);
    }

    /// <summary>
    /// A job with one page of its images (<c>GET /v1/jobs/{id}</c>): images with an index above
    /// <paramref name="imagesAfter"/>, at most <paramref name="imagesLimit"/>. Null when the farm has no such job.
    /// </summary>
    public async Task<Job?> GetJobAsync(Guid jobId, long imagesAfter = -1, int? imagesLimit = null, CancellationToken cancellationToken = default)
    {
        var uri = string.Create(CultureInfo.InvariantCulture, $"v1/jobs/{jobId}?imagesAfter={imagesAfter}");
        if (imagesLimit is { } limit)
        {
            uri += string.Create(CultureInfo.InvariantCulture, $"&imagesLimit={limit}");
        }

        using var response = await _http.GetAsync(uri, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        return await ReadAsync<Job>(response, cancellationToken);
    }

    /// <summary>Every finished image of a job, paging through <see cref="GetJobAsync"/>; empty when the job is unknown.</summary>
    public async IAsyncEnumerable<JobImage> GetImagesAsync(Guid jobId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var after = -1L;
        while (true)
        {
            var job = await GetJobAsync(jobId, after, MaxImagesPerPage, cancellationToken);
            if (job is null || job.Images.Count == 0)
            {
                yield break;
            }

            foreach (var image in job.Images)
            {
                yield return image;
            }

            after = job.Images[^1].Index;
        }
    }

    /// <summary>Jobs newest first (<c>GET /v1/jobs</c>), optionally only those in <paramref name="state"/>.</summary>
    public async Task<PagedResult<JobSummary>> ListJobsAsync(JobState? state = null, int page = 1, int pageSize = 50, CancellationToken cancellationToken = default)
    {
        var uri = string.Create(CultureInfo.InvariantCulture, $"v1/jobs?page={page}&pageSize={pageSize}");
        if (state is { } s)
        {
            uri += "&state=" + s.ToString();
        }

        using var response = await _http.GetAsync(uri, cancellationToken);
        return await ReadAsync<PagedResult<JobSummary>>(response, cancellationToken);
    }

    /// <summary>
    /// Cancels a job (<c>POST /v1/jobs/{id}/cancel</c>): unfinished items are canceled and running ones stop between
    /// steps. Throws <see cref="RenderFarmApiException"/> with 404 for an unknown job and 409 for a finished one.
    /// </summary>
    public async Task<Job> CancelJobAsync(Guid jobId, string? reason = null, CancellationToken cancellationToken = default)
    {
        var uri = $"v1/jobs/{jobId}/cancel";
        if (reason is not null)
        {
            uri += "?reason=" + Uri.EscapeDataString(reason);
        }

        using var response = await _http.PostAsync(uri, content: null, cancellationToken);
        return await ReadAsync<Job>(response, cancellationToken);
    }

    /// <summary>
    /// Deletes a finished job (<c>DELETE /v1/jobs/{id}</c>): its images, hires parts and inputs in the store, then its
    /// rows. Throws <see cref="RenderFarmApiException"/> with 404 for an unknown job and 409 for one still queued or running.
    /// </summary>
    public async Task DeleteJobAsync(Guid jobId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.DeleteAsync($"v1/jobs/{jobId}", cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
    }

    /// <summary>
    /// Queues a new attempt of every failed and canceled item of a job, with the same seeds and parameters
    /// (<c>POST /v1/jobs/{id}/retry</c>). Throws <see cref="RenderFarmApiException"/> with 404 for an unknown job and
    /// 409 when nothing failed or was canceled (or for a hires job, which is resubmitted instead).
    /// </summary>
    public async Task<RetryResult> RetryJobAsync(Guid jobId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsync($"v1/jobs/{jobId}/retry", content: null, cancellationToken);
        return await ReadAsync<RetryResult>(response, cancellationToken);
    }

    /// <summary>
    /// Follows a job's server-sent events (<c>GET /v1/jobs/{id}/events</c>): a <see cref="JobEventTypes.Snapshot"/>
    /// first, then what happens, ending after <see cref="JobEventTypes.JobDone"/>. The stream can also end early (the
    /// coordinator restarted); callers that must see the end re-read the job and follow again.
    /// </summary>
    public async IAsyncEnumerable<JobEvent> FollowEventsAsync(Guid jobId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/jobs/{jobId}/events");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);

        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        var parser = SseParser.Create(stream, static (type, data) => JsonSerializer.Deserialize<JobEvent>(data, Json));
        await foreach (var item in parser.EnumerateAsync(cancellationToken))
        {
            if (item.Data is { } jobEvent)
            {
                yield return jobEvent;
            }
        }
    }

    /// <summary>
    /// Opens a rendered PNG (<c>GET /v1/images/{jobId}/{index}</c>), following a redirect to a presigned URL when the farm
    /// stores images in S3. The caller disposes the stream. 404 (no such image yet) throws <see cref="RenderFarmApiException"/>.
    /// </summary>
    public async Task<Stream> DownloadImageAsync(Guid jobId, long index, CancellationToken cancellationToken = default)
    {
        return await OpenStreamAsync(string.Create(CultureInfo.InvariantCulture, $"v1/images/{jobId}/{index}"), cancellationToken);
    }

    /// <summary>Downloads a rendered PNG to <paramref name="path"/> (overwriting it).</summary>
    public async Task DownloadImageAsync(Guid jobId, long index, string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        await using var source = await DownloadImageAsync(jobId, index, cancellationToken);
        await SaveAsync(source, path, cancellationToken);
    }

    /// <summary>A WebDataset job's published shards; 404 (<see cref="RenderFarmApiException"/>) for an unknown job or one with the files output.</summary>
    public async Task<DatasetShardList> GetShardsAsync(Guid jobId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync($"v1/jobs/{jobId}/shards", cancellationToken);
        return await ReadAsync<DatasetShardList>(response, cancellationToken);
    }

    /// <summary>Opens a published shard's tar (following the coordinator's redirect to the store); the caller disposes the stream.</summary>
    public async Task<Stream> DownloadShardAsync(Guid jobId, int shard, CancellationToken cancellationToken = default)
    {
        return await OpenStreamAsync(string.Create(CultureInfo.InvariantCulture, $"v1/jobs/{jobId}/shards/{shard}"), cancellationToken);
    }

    /// <summary>
    /// Opens a job's dataset manifest (<c>GET /v1/jobs/{id}/manifest</c>) in <paramref name="format"/>: one record per
    /// item in index order. The caller disposes the stream; an unknown job throws <see cref="RenderFarmApiException"/> (404).
    /// </summary>
    public async Task<Stream> OpenManifestAsync(Guid jobId, ManifestFormat format = ManifestFormat.Jsonl, CancellationToken cancellationToken = default)
    {
        return await OpenStreamAsync($"v1/jobs/{jobId}/manifest?format={(format == ManifestFormat.Parquet ? "parquet" : "jsonl")}", cancellationToken);
    }

    /// <summary>Downloads a job's manifest to <paramref name="path"/> (overwriting it once complete).</summary>
    public async Task DownloadManifestAsync(Guid jobId, ManifestFormat format, string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        await using var source = await OpenManifestAsync(jobId, format, cancellationToken);
        await SaveAsync(source, path, cancellationToken);
    }

    // The response stays open until the caller disposes the stream; a failed status disposes it here.
    private async Task<Stream> OpenStreamAsync(string uri, CancellationToken cancellationToken)
    {
        var response = await _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        try
        {
            await EnsureSuccessAsync(response, cancellationToken);
            return new ResponseStream(await response.Content.ReadAsStreamAsync(cancellationToken), response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    // Written beside the target and moved, so an interrupted download never leaves a truncated file under the final name.
    private static async Task SaveAsync(Stream source, string path, CancellationToken cancellationToken)
    {
        var partial = path + ".part";
        await using (var target = File.Create(partial))
        {
            await source.CopyToAsync(target, cancellationToken);
        }

        File.Move(partial, path, overwrite: true);
    }

    /// <summary>A job's manifest entries as the farm streams them (JSONL, parsed line by line; never all in memory).</summary>
    public async IAsyncEnumerable<ManifestEntry> GetManifestAsync(Guid jobId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var stream = await OpenManifestAsync(jobId, ManifestFormat.Jsonl, cancellationToken);
        await foreach (var entry in ReadManifestAsync(stream, cancellationToken))
        {
            yield return entry;
        }
    }

    /// <summary>Parses a JSONL manifest (as <see cref="OpenManifestAsync"/> or a saved <c>manifest.jsonl</c> holds it).</summary>
    /// <exception cref="InvalidDataException">A line is not a manifest entry.</exception>
    public static async IAsyncEnumerable<ManifestEntry> ReadManifestAsync(Stream jsonl, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var reader = new StreamReader(jsonl, leaveOpen: true);
        var number = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            number++;
            if (line.Length == 0)
            {
                continue;
            }

            ManifestEntry? entry;
            try
            {
                entry = JsonSerializer.Deserialize<ManifestEntry>(line, Json);
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"Manifest line {number} is not a manifest entry: {ex.Message}", ex);
            }

            yield return entry ?? throw new InvalidDataException($"Manifest line {number} is null.");
        }
    }

    /// <summary>
    /// The latest preview of item <paramref name="index"/> of a job (<c>GET /v1/jobs/{id}/items/{index}/preview</c>);
    /// null when there is none (the item is not running, has not reached its first preview, or previews are off).
    /// </summary>
    public async Task<ItemPreview?> GetItemPreviewAsync(Guid jobId, long index, CancellationToken cancellationToken = default)
    {
        var uri = string.Create(CultureInfo.InvariantCulture, $"v1/jobs/{jobId}/items/{index}/preview");
        using var response = await _http.GetAsync(uri, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        await EnsureSuccessAsync(response, cancellationToken);
        return new ItemPreview(
            await response.Content.ReadAsByteArrayAsync(cancellationToken),
            response.Content.Headers.ContentType?.MediaType ?? "application/octet-stream",
            HeaderNumber(response, PreviewStepHeader),
            HeaderNumber(response, PreviewTotalStepsHeader));
    }

    /// <summary>Every worker the farm knows (<c>GET /v1/workers</c>), live or not.</summary>
    public async Task<IReadOnlyList<Worker>> GetWorkersAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync("v1/workers", cancellationToken);
        return await ReadAsync<IReadOnlyList<Worker>>(response, cancellationToken);
    }

    private static int HeaderNumber(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values)
        && int.TryParse(values.FirstOrDefault(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : 0;

    /// <summary>The farm's dead letters (<c>GET /v1/dead-letters</c>): each <c>_error</c> queue and its count.</summary>
    public async Task<DeadLetterReport> GetDeadLettersAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync("v1/dead-letters", cancellationToken);
        return await ReadAsync<DeadLetterReport>(response, cancellationToken);
    }

    /// <summary>Moves <paramref name="queue"/>'s dead letters back to it (<c>POST /v1/dead-letters/{queue}/replay</c>).</summary>
    public async Task<DeadLetterReplay> ReplayDeadLettersAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(queue);
        using var response = await _http.PostAsync($"v1/dead-letters/{Uri.EscapeDataString(queue)}/replay", content: null, cancellationToken);
        return await ReadAsync<DeadLetterReplay>(response, cancellationToken);
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await EnsureSuccessAsync(response, cancellationToken);
        return await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken)
            ?? throw new RenderFarmApiException((int)response.StatusCode, "The farm answered with an empty body.", null, new Dictionary<string, IReadOnlyList<string>>());
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var status = (int)response.StatusCode;
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (TryReadProblem(text) is { } problem)
        {
            throw new RenderFarmApiException(
                problem.Status ?? status,
                problem.Title ?? response.ReasonPhrase ?? "The farm answered with an error.",
                problem.Detail,
                (problem.Errors ?? []).ToDictionary(e => e.Key, e => (IReadOnlyList<string>)e.Value));
        }

        var detail = string.IsNullOrWhiteSpace(text) ? null : text.Length > 500 ? text[..500] + "…" : text;
        throw new RenderFarmApiException(status, response.ReasonPhrase ?? "The farm answered with an error.", detail, new Dictionary<string, IReadOnlyList<string>>());
    }

    // Parsed by shape rather than by content type: status-code pages and proxies do not always label problems.
    private static Problem? TryReadProblem(string text)
    {
        if (string.IsNullOrWhiteSpace(text) || text.TrimStart()[0] != '{')
        {
            return null;
        }

        try
        {
            var problem = JsonSerializer.Deserialize<Problem>(text, Json);
            return problem?.Title is null && problem?.Errors is null ? null : problem;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record Problem(string? Title, int? Status, string? Detail, Dictionary<string, string[]>? Errors);

    /// <summary>The image's body stream, which also disposes the response it belongs to.</summary>
    private sealed class ResponseStream(Stream inner, HttpResponseMessage response) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                response.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
