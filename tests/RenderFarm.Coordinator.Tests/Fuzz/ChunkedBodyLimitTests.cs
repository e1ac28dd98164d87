using System.Globalization;
using System.Net;
using System.Text.Json;
using RenderFarm.Coordinator.Tests.Infrastructure;

namespace RenderFarm.Coordinator.Tests.Fuzz;

/// <summary>
/// The request body limit on Kestrel, the server a coordinator runs on: a chunked body declares no length, so only
/// the server's own body-size limit (which the coordinator sets to its <c>MaxBodyBytes</c>) can stop it, and it must
/// still end as a 413 problem, not a 500 or a hang. The limit is set far below Kestrel's own default, so the test
/// sees the coordinator's setting at work.
/// </summary>
public sealed class ChunkedBodyLimitTests : IAsyncDisposable
{
    private const long Limit = 1_000_000;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "rf-coord-chunked", Guid.NewGuid().ToString("N"));
    private readonly CoordinatorFactory _factory;

    public ChunkedBodyLimitTests()
    {
        _factory = new CoordinatorFactory(new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Sqlite",
            ["Database:SqlitePath"] = Path.Combine(_folder, "renderfarm.db"),
            ["Coordinator:RequestLimits:MaxBodyBytes"] = Limit.ToString(CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Default"] = "None",
        });
        _factory.UseKestrel(0);
        _factory.StartServer();
    }

    [Theory]
    [InlineData(Limit + 1)]
    [InlineData(Limit * 5)]
    public async Task A_chunked_body_over_the_limit_is_stopped_at_the_limit_with_a_413_problem(long length)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var http = _factory.CreateClient();
        using var content = new StreamContent(new OverLimitJson(length));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/jobs") { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await http.SendAsync(request, timeout.Token);

        var text = await response.Content.ReadAsStringAsync(timeout.Token);
        response.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge, text);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        JsonDocument.Parse(text).RootElement.GetProperty("status").GetInt32().ShouldBe(413);
    }

    [Fact]
    public async Task A_chunked_body_under_the_limit_is_read_and_validated()
    {
        using var http = _factory.CreateClient();
        using var content = new StreamContent(new OverLimitJson(Limit - 1000, close: true));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/jobs") { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await http.SendAsync(request);

        // Read whole and judged by the validator: the prompt is far over its length limit.
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, text);
        JsonDocument.Parse(text).RootElement.GetProperty("errors").TryGetProperty("prompt", out _).ShouldBeTrue(text);
    }

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    /// <summary>
    /// A JSON job whose prompt runs on to <paramref name="length"/> bytes, produced as it is read (never whole in
    /// memory); with <paramref name="close"/> the JSON is closed at the end, so a body that fits is valid JSON.
    /// </summary>
    private sealed class OverLimitJson(long length, bool close = false) : Stream
    {
        private static readonly byte[] Tail = "\"}"u8.ToArray();
        private static readonly byte[] Head = "{\"prompt\":\""u8.ToArray();
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            for (var i = 0; i < n; i++)
            {
                var at = _position + i;
                buffer[offset + i] = at < Head.Length ? Head[at] : close && at >= length - Tail.Length ? Tail[at - (length - Tail.Length)] : (byte)'x';
            }

            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
