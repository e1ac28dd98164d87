using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf;

namespace RenderFarm.IntegrationTests.Infrastructure;

/// <summary>One span as exported over OTLP, with the <c>service.name</c> of the process that sent it.</summary>
internal sealed record ReceivedSpan(string Service, string TraceId, string SpanId, string ParentSpanId, string Name, IReadOnlyDictionary<string, string> Attributes);

/// <summary>
/// An OTLP/HTTP receiver (<c>POST /v1/traces</c>, <c>application/x-protobuf</c>) on a free loopback port that keeps
/// every span it is sent; logs and metrics are acknowledged and dropped.
/// </summary>
/// <remarks>
/// The OTLP message types are not served as a package here (no OpenTelemetry.Proto on the NuGet mirror, and no
/// .proto files to compile), so the few fields needed are read by field number with Google.Protobuf's
/// <see cref="CodedInputStream"/>, following opentelemetry-proto's trace.proto, resource.proto and common.proto.
/// </remarks>
internal sealed class OtlpTraceReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();
    private readonly Task _loop;

    public OtlpTraceReceiver()
    {
        var port = Farm.FreePort();
        Endpoint = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(Endpoint.ToString());
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    /// <summary>The base endpoint for <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>; the exporter appends <c>/v1/traces</c>.</summary>
    public Uri Endpoint { get; }

    public IReadOnlyList<ReceivedSpan> Spans => [.. _spans];

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            await _loop;
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            if (context.Request.Url?.AbsolutePath == "/v1/traces")
            {
                foreach (var span in ReadExportTraceServiceRequest(body.ToArray()))
                    _spans.Enqueue(span);
            }

            // An empty message is a valid ExportTraceServiceResponse (no partial success).
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close();
        }
    }

    // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
    internal static List<ReceivedSpan> ReadExportTraceServiceRequest(byte[] message)
    {
        var spans = new List<ReceivedSpan>();
        foreach (var (field, resourceSpans) in Fields(message))
        {
            if (field == 1)
                spans.AddRange(ReadResourceSpans(resourceSpans.ToByteArray()));
        }

        return spans;
    }

    // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
    // Resource { repeated KeyValue attributes = 1; }   ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
    private static List<ReceivedSpan> ReadResourceSpans(byte[] message)
    {
        var service = "";
        var scopeSpans = new List<ByteString>();
        foreach (var (field, value) in Fields(message))
        {
            if (field == 1)
                service = Attributes(value.ToByteArray(), attributeField: 1).GetValueOrDefault("service.name", "");
            else if (field == 2)
                scopeSpans.Add(value);
        }

        var spans = new List<ReceivedSpan>();
        foreach (var scope in scopeSpans)
        {
            foreach (var (field, span) in Fields(scope.ToByteArray()))
            {
                if (field == 2)
                    spans.Add(ReadSpan(service, span.ToByteArray()));
            }
        }

        return spans;
    }

    // Span { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5;
    //        ...; repeated KeyValue attributes = 9; }
    private static ReceivedSpan ReadSpan(string service, byte[] message)
    {
        string traceId = "", spanId = "", parent = "", name = "";
        foreach (var (field, value) in Fields(message))
        {
            switch (field)
            {
                case 1: traceId = Convert.ToHexStringLower(value.Span); break;
                case 2: spanId = Convert.ToHexStringLower(value.Span); break;
                case 4: parent = Convert.ToHexStringLower(value.Span); break;
                case 5: name = value.ToStringUtf8(); break;
            }
        }

        return new ReceivedSpan(service, traceId, spanId, parent, name, Attributes(message, attributeField: 9));
    }

    // KeyValue { string key = 1; AnyValue value = 2; }
    // AnyValue { oneof { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ... } }
    private static Dictionary<string, string> Attributes(byte[] message, int attributeField)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (field, keyValue) in Fields(message))
        {
            if (field != attributeField)
                continue;
            string key = "", text = "";
            foreach (var (kvField, kvValue) in Fields(keyValue.ToByteArray()))
            {
                if (kvField == 1)
                    key = kvValue.ToStringUtf8();
                else if (kvField == 2)
                    text = AnyValueText(kvValue.ToByteArray());
            }

            attributes[key] = text;
        }

        return attributes;
    }

    private static string AnyValueText(byte[] message)
    {
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: return input.ReadString();
                case 2: return input.ReadBool() ? "true" : "false";
                case 3: return input.ReadInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
                case 4: return input.ReadDouble().ToString(System.Globalization.CultureInfo.InvariantCulture);
                default: input.SkipLastField(); break;
            }
        }

        return "";
    }

    /// <summary>The length-delimited fields of a message (the only wire type these reads need), other fields skipped.</summary>
    private static IEnumerable<(int Field, ByteString Value)> Fields(byte[] message)
    {
        var input = new CodedInputStream(message);
        var fields = new List<(int, ByteString)>();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
                fields.Add((WireFormat.GetTagFieldNumber(tag), input.ReadBytes()));
            else
                input.SkipLastField();
        }

        return fields;
    }
}
