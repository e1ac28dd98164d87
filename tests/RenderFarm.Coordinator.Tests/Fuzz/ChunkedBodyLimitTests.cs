using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
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

        var (status, contentType, body) = await PostChunkedAsync(new OverLimitJson(length), timeout.Token);

        status.ShouldBe(413, body);
        contentType.ShouldStartWith("application/problem+json");
        JsonDocument.Parse(body).RootElement.GetProperty("status").GetInt32().ShouldBe(413);
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

    /// <summary>
    /// Sends a chunked POST over a plain socket, reading the answer while the body is still going out. HttpClient
    /// cannot be used for the bodies far over the limit: it reads no answer until it has sent the whole body, and the
    /// server, having answered 413 and closed, makes that send fail with a broken pipe before the answer is read.
    /// </summary>
    private async Task<(int Status, string ContentType, string Body)> PostChunkedAsync(Stream content, CancellationToken cancellationToken)
    {
        Uri address;
        using (var http = _factory.CreateClient())
        {
            address = http.BaseAddress!;
        }

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port, cancellationToken);
        var stream = tcp.GetStream();
        var head = $"POST /v1/jobs HTTP/1.1\r\nHost: {address.Authority}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), cancellationToken);

        using var stopSending = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sending = SendChunksAsync(stream, content, stopSending.Token);
        var response = await ReadResponseAsync(stream, cancellationToken);
        await stopSending.CancelAsync();
        await sending;
        return response;
    }

    private static async Task SendChunksAsync(NetworkStream stream, Stream content, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"{read:x}\r\n"), cancellationToken);
                await stream.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                await stream.WriteAsync("\r\n"u8.ToArray(), cancellationToken);
            }

            await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), cancellationToken);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The server stopped reading (it answered and closed), or the answer is in: the rest of the body is moot.
        }
    }

    /// <summary>Reads one HTTP/1.1 response: status, Content-Type, and a body framed by Content-Length or chunked.</summary>
    private static async Task<(int Status, string ContentType, string Body)> ReadResponseAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var received = new List<byte>();
        var buffer = new byte[8192];

        async Task<bool> FillAsync()
        {
            var read = await stream.ReadAsync(buffer, cancellationToken);
            received.AddRange(buffer.AsSpan(0, read));
            return read > 0;
        }

        int IndexOf(string marker, int from)
        {
            var bytes = Encoding.ASCII.GetBytes(marker);
            for (var i = from; i <= received.Count - bytes.Length; i++)
            {
                if (received.Skip(i).Take(bytes.Length).SequenceEqual(bytes))
                {
                    return i;
                }
            }

            return -1;
        }

        int headEnd;
        while ((headEnd = IndexOf("\r\n\r\n", 0)) < 0)
        {
            (await FillAsync()).ShouldBeTrue("the connection closed before the response's headers");
        }

        var lines = Encoding.ASCII.GetString(received.Take(headEnd).ToArray()).Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
        var body = new List<byte>();
        var at = headEnd + 4;
        if (headers.TryGetValue("Content-Length", out var contentLength))
        {
            var length = int.Parse(contentLength, CultureInfo.InvariantCulture);
            while (received.Count < at + length)
            {
                (await FillAsync()).ShouldBeTrue("the connection closed inside the response's body");
            }

            body.AddRange(received.Skip(at).Take(length));
        }
        else
        {
            headers.GetValueOrDefault("Transfer-Encoding").ShouldBe("chunked", "a response with neither Content-Length nor chunked framing");
            while (true)
            {
                int lineEnd;
                while ((lineEnd = IndexOf("\r\n", at)) < 0)
                {
                    (await FillAsync()).ShouldBeTrue("the connection closed inside a chunk header");
                }

                var size = int.Parse(Encoding.ASCII.GetString(received.Skip(at).Take(lineEnd - at).ToArray()).Split(';')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                at = lineEnd + 2;
                if (size == 0)
                {
                    break;
                }

                while (received.Count < at + size + 2)
                {
                    (await FillAsync()).ShouldBeTrue("the connection closed inside a chunk");
                }

                body.AddRange(received.Skip(at).Take(size));
                at += size + 2;
            }
        }

        return (status, headers.GetValueOrDefault("Content-Type") ?? "", Encoding.UTF8.GetString(body.ToArray()));
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
