using System.Collections.Frozen;
using MassTransit;
using RenderFarm.Contracts;

namespace RenderFarm.Messaging;

/// <summary>
/// Maps <see cref="MessageNames"/> onto MassTransit: the envelope's <c>messageType</c> URNs and the broker
/// entity (exchange) names come from the wire names, never from CLR type names.
/// </summary>
/// <remarks>
/// MassTransit 8 derives a type's URN only from <c>[MessageUrn]</c> or from namespace and class name
/// (<c>MessageUrn.GetMessageName</c>, cached per type, no hook). Contracts takes no MassTransit dependency, so the
/// bus serializer translates between MassTransit's CLR-derived URN and the wire name at the envelope boundary
/// (<see cref="WireNameSerializerFactory"/>), while entity names are set through the topology's
/// <see cref="IEntityNameFormatter"/>.
/// </remarks>
public static class WireNames
{
    private static readonly FrozenDictionary<Type, string> EntityNames =
        MessageNames.ByType.ToFrozenDictionary(p => p.Key, p => ToEntityName(p.Value));

    // CLR-derived URN (what MassTransit computes) ↔ wire URN (what travels).
    private static readonly FrozenDictionary<string, string> ClrToWire =
        MessageNames.ByType.ToFrozenDictionary(p => MessageUrn.ForTypeString(p.Key), p => p.Value, StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, string> WireToClr =
        ClrToWire.ToFrozenDictionary(p => p.Value, p => p.Key, StringComparer.OrdinalIgnoreCase);

    /// <summary>The broker entity (exchange, topic) name of a wire name: the URN without MassTransit's <c>urn:message:</c> prefix.</summary>
    /// <param name="wireName">One of <see cref="MessageNames"/>' constants.</param>
    /// <returns>For example <c>RenderFarm:RenderWorkUnit:v1</c> for <see cref="MessageNames.RenderWorkUnit"/>.</returns>
    public static string ToEntityName(string wireName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(wireName);
        return wireName.StartsWith(MessageUrn.Prefix, StringComparison.Ordinal) ? wireName[MessageUrn.Prefix.Length..] : wireName;
    }

    /// <summary>The entity name of a contract type, or of <c>Fault&lt;T&gt;</c> of one; false for types outside <see cref="MessageNames.ByType"/>.</summary>
    /// <param name="messageType">A message type.</param>
    /// <param name="entityName">The entity name when known.</param>
    public static bool TryGetEntityName(Type messageType, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? entityName)
    {
        ArgumentNullException.ThrowIfNull(messageType);
        if (EntityNames.TryGetValue(messageType, out entityName))
            return true;

        // Faults of our contracts keep MassTransit's "MassTransit:Fault--X--" shape with X the wire entity name,
        // so a rename of a contract class does not move its fault exchange either.
        if (messageType.IsGenericType && messageType.GetGenericTypeDefinition() == typeof(Fault<>)
            && EntityNames.TryGetValue(messageType.GetGenericArguments()[0], out var inner))
        {
            entityName = "MassTransit:Fault--" + inner + "--";
            return true;
        }

        entityName = null;
        return false;
    }

    /// <summary>Rewrites a MassTransit message type URN to its wire name; other URNs come back unchanged.</summary>
    internal static string ToWire(string clrUrn) => Translate(clrUrn, ClrToWire);

    /// <summary>Rewrites a wire name to the URN MassTransit matches consumers on; other URNs come back unchanged.</summary>
    internal static string FromWire(string wireUrn) => Translate(wireUrn, WireToClr);

    private static string Translate(string urn, FrozenDictionary<string, string> map)
    {
        if (map.TryGetValue(urn, out var mapped))
            return mapped;

        // Generic envelopes (Fault<RenderWorkUnit> is "urn:message:MassTransit:Fault[[urn:message:…]]") carry
        // the argument's URN in brackets; translate those arguments, leave the rest as MassTransit wrote it.
        if (!urn.Contains("[[", StringComparison.Ordinal))
            return urn;

        foreach (var (from, to) in map)
            urn = urn.Replace("[" + from + "]", "[" + to + "]", StringComparison.Ordinal);
        return urn;
    }
}

internal sealed class WireNameEntityNameFormatter(IEntityNameFormatter fallback) : IEntityNameFormatter
{
    public string FormatEntityName<T>() =>
        WireNames.TryGetEntityName(typeof(T), out var name) ? name : fallback.FormatEntityName<T>();
}
