using System.Net.Mime;
using System.Text.Json;
using System.Text.Json.Nodes;
using MassTransit;
using MassTransit.Serialization;

namespace RenderFarm.Messaging;

/// <summary>
/// MassTransit's System.Text.Json envelope serializer with the envelope's <c>messageType</c> translated to and
/// from <see cref="RenderFarm.Contracts.MessageNames"/> (see <see cref="WireNames"/> for why).
/// </summary>
/// <remarks>
/// Same content type as MassTransit's own serializer, so a peer without this translation still reads our
/// envelopes; it would only fail to match the wire names to its types, which is the point of having them.
/// </remarks>
internal sealed class WireNameSerializerFactory : ISerializerFactory
{
    private readonly SystemTextJsonMessageSerializer _inner = new();

    public ContentType ContentType => _inner.ContentType;

    public IMessageSerializer CreateSerializer() => new Serializer(_inner);

    public IMessageDeserializer CreateDeserializer() => new Deserializer(_inner);

    private const string MessageTypeProperty = "messageType";

    // Rewrites the messageType array in place; the rest of the envelope is left as MassTransit wrote it.
    private static byte[] RewriteMessageTypes(byte[] envelope, Func<string, string> translate)
    {
        var root = JsonNode.Parse(envelope, new JsonNodeOptions { PropertyNameCaseInsensitive = true });
        if (root is not JsonObject obj || obj[MessageTypeProperty] is not JsonArray types)
            return envelope;

        var changed = false;
        for (var i = 0; i < types.Count; i++)
        {
            if (types[i]?.GetValueKind() != JsonValueKind.String)
                continue;
            var from = types[i]!.GetValue<string>();
            var to = translate(from);
            if (!ReferenceEquals(from, to) && from != to)
            {
                types[i] = to;
                changed = true;
            }
        }

        return changed ? JsonSerializer.SerializeToUtf8Bytes(root, SystemTextJsonMessageSerializer.Options) : envelope;
    }

    private sealed class Serializer(SystemTextJsonMessageSerializer inner) : IMessageSerializer
    {
        public ContentType ContentType => inner.ContentType;

        public MessageBody GetMessageBody<T>(SendContext<T> context)
            where T : class =>
            new WireMessageBody(inner.GetMessageBody(context));
    }

    // Lazy like MassTransit's own bodies: nothing is serialized until the transport asks for the bytes.
    private sealed class WireMessageBody(MessageBody inner) : MessageBody
    {
        private byte[]? _bytes;

        public long? Length => GetBytes().Length;

        public Stream GetStream() => new MemoryStream(GetBytes(), writable: false);

        public byte[] GetBytes() => _bytes ??= RewriteMessageTypes(inner.GetBytes(), WireNames.ToWire);

        public string GetString() => System.Text.Encoding.UTF8.GetString(GetBytes());
    }

    private sealed class Deserializer(SystemTextJsonMessageSerializer inner) : IMessageDeserializer
    {
        public ContentType ContentType => inner.ContentType;

        public void Probe(ProbeContext context)
        {
            var scope = context.CreateScope("wireNames");
            inner.Probe(scope);
        }

        public ConsumeContext Deserialize(ReceiveContext receiveContext) =>
            new BodyConsumeContext(receiveContext, Deserialize(receiveContext.Body, receiveContext.TransportHeaders, receiveContext.InputAddress));

        public SerializerContext Deserialize(MessageBody body, Headers headers, Uri? destinationAddress = null) =>
            inner.Deserialize(new BytesMessageBody(RewriteMessageTypes(body.GetBytes(), WireNames.FromWire)), headers, destinationAddress);

        public MessageBody GetMessageBody(string text) => inner.GetMessageBody(text);
    }
}
