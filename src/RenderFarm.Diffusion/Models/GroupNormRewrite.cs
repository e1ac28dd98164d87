using Google.Protobuf;
using RenderFarm.Onnx;

namespace RenderFarm.Diffusion.Models;

/// <summary>
/// Rewrites an exported VAE half so its GroupNorm layers can normalise with statistics given from outside: what a
/// tiled decode needs for every tile to use the same mean and variance per group, as the untiled decode does.
/// </summary>
/// <remarks>
/// Exports write GroupNorm as Reshape [N,G,-1] → InstanceNormalization → Reshape back → affine. Each
/// InstanceNormalization becomes the same normalisation spelled out, with a switch: with
/// <see cref="UseGivenInput"/> false it normalises with its own statistics (and the graph computes what the original
/// did), with it true it uses the layer's <c>…_mean</c>/<c>…_variance</c> inputs. Either way the layer's own
/// statistics are graph outputs, so one pass over a small stand-in of the whole image gathers what the tiles are then
/// given. One rewritten graph serves both passes, so a worker holds the VAE's weights once.
/// Written by hand because no served library edits ONNX graphs from .NET; the edit is local to each
/// InstanceNormalization node, and everything else in the file is written back as it was read.
/// </remarks>
internal static class GroupNormRewrite
{
    public const string UseGivenInput = "renderfarm_groupnorm_use_given";

    private const string Prefix = "renderfarm_groupnorm_";

    /// <summary>The rewritten model, or null with the reason when the graph has no GroupNorm this rewrite can take.</summary>
    public static (byte[]? Model, int Layers, string? Reason) Rewrite(byte[] model)
    {
        ModelProto proto;
        try
        {
            proto = ModelProto.Parser.ParseFrom(model);
        }
        catch (InvalidProtocolBufferException ex)
        {
            return (null, 0, $"the file is not an ONNX model ({ex.Message})");
        }

        var graph = proto.Graph;
        if (graph is null)
        {
            return (null, 0, "the model has no graph");
        }

        if (graph.Initializer.Any(i => i.DataLocation == 1))
        {
            return (null, 0, "its weights are stored in files beside the model (external data)");
        }

        if (graph.Node.Any(n => n.OpType == "GroupNormalization"))
        {
            return (null, 0, "the graph uses GroupNormalization (opset 18+), which this rewrite does not take");
        }

        var opset = proto.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
        var types = ElementTypes(graph);
        var nodes = new List<NodeProto>(graph.Node.Count);
        var layer = 0;
        foreach (var node in graph.Node)
        {
            if (node.OpType != "InstanceNormalization" || node.Domain is not ("" or "ai.onnx") || node.Input.Count < 3)
            {
                nodes.Add(node);
                continue;
            }

            if (!types.TryGetValue(node.Input[1], out var elementType))
            {
                return (null, 0, $"the element type of InstanceNormalization '{node.Name}' is not declared in the graph");
            }

            if (elementType != (int)TensorProto.Types.DataType.Float)
            {
                // ONNX Runtime's InstanceNormalization accumulates a float16 layer's sums in float32; the spelled-out
                // ReduceSumSquare would sum in float16 and overflow (a group of a 512² decode holds a million values).
                return (null, 0, $"InstanceNormalization '{node.Name}' computes in element type {elementType}, not float32");
            }

            nodes.AddRange(Normalisation(graph, node, layer, elementType, opset));
            layer++;
        }

        if (layer == 0)
        {
            return (null, 0, "the graph has no InstanceNormalization (GroupNorm) layer");
        }

        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        graph.Input.Add(new ValueInfoProto { Name = UseGivenInput, Type = TensorType((int)TensorProto.Types.DataType.Bool, 1) });
        return (proto.ToByteArray(), layer, null);
    }

    public static string MeanInput(int layer) => $"{Prefix}{layer}_mean";
    public static string VarianceInput(int layer) => $"{Prefix}{layer}_variance";
    public static string OwnMeanOutput(int layer) => $"{Prefix}{layer}_own_mean";
    public static string OwnVarianceOutput(int layer) => $"{Prefix}{layer}_own_variance";

    /// <summary>
    /// y = x·g + (bias − m·g), g = scale/√(v + ε), over the grouped tensor [N,G,L], where m, v are the layer's own
    /// statistics or the given ones. Spelled so that only two ops touch the whole tensor (a Mul, then an Add ONNX Runtime
    /// may run in place) and the own variance comes from one ReduceSumSquare as E[x²] − m²: a tile then peaks as the
    /// exported InstanceNormalization does, with its input and one output alive, instead of holding centred copies.
    /// </summary>
    private static IEnumerable<NodeProto> Normalisation(GraphProto graph, NodeProto node, int layer, int elementType, long opset)
    {
        var p = $"{Prefix}{layer}_";
        var epsilon = node.Attribute.FirstOrDefault(a => a.Name == "epsilon") is { HasF: true } e ? e.F : 1e-5f;
        graph.Initializer.Add(Scalar(p + "epsilon", elementType, epsilon));
        graph.Initializer.Add(Int64s(p + "grouped_shape", 0, 0, -1));
        graph.Initializer.Add(Int64s(p + "column_shape", 1, -1, 1));
        graph.Initializer.Add(new TensorProto { Name = p + "length_axis", DataType = (int)TensorProto.Types.DataType.Int64, Int64Data = { 2 } });
        graph.Input.Add(new ValueInfoProto { Name = MeanInput(layer), Type = Statistics(elementType) });
        graph.Input.Add(new ValueInfoProto { Name = VarianceInput(layer), Type = Statistics(elementType) });
        graph.Output.Add(new ValueInfoProto { Name = OwnMeanOutput(layer), Type = Statistics(elementType) });
        graph.Output.Add(new ValueInfoProto { Name = OwnVarianceOutput(layer), Type = Statistics(elementType) });

        // InstanceNormalization reduces over every axis after the second; exports feed it [N,G,L], and viewing the input as
        // [N,G,L] whatever its rank keeps the statistics one per (batch, group) with reductions over axis 2 alone.
        var x = node.Input[0];
        var x3 = p + "x";
        yield return Node("Reshape", [x, p + "grouped_shape"], x3);
        yield return Reduce("ReduceMean", x3, OwnMeanOutput(layer), opset, graph, p);
        yield return Reduce("ReduceSumSquare", x3, p + "sum_squares", opset, graph, p);
        yield return Node("Shape", [x3], p + "shape");
        yield return Node("Gather", [p + "shape", p + "length_axis"], p + "length_int");
        var cast = Node("Cast", [p + "length_int"], p + "length");
        cast.Attribute.Add(new AttributeProto { Name = "to", I = elementType, Type = AttributeProto.Types.AttributeType.Int });
        yield return cast;
        yield return Node("Div", [p + "sum_squares", p + "length"], p + "mean_square");
        yield return Node("Mul", [OwnMeanOutput(layer), OwnMeanOutput(layer)], p + "square_mean");
        yield return Node("Sub", [p + "mean_square", p + "square_mean"], p + "raw_variance");
        // Rounding can take E[x²] − m² a hair below zero for a constant group.
        yield return Node("Relu", [p + "raw_variance"], OwnVarianceOutput(layer));
        yield return Node("Where", [UseGivenInput, MeanInput(layer), OwnMeanOutput(layer)], p + "m");
        yield return Node("Where", [UseGivenInput, VarianceInput(layer), OwnVarianceOutput(layer)], p + "v");
        yield return Node("Add", [p + "v", p + "epsilon"], p + "v_eps");
        yield return Node("Sqrt", [p + "v_eps"], p + "std");
        yield return Node("Reshape", [node.Input[1], p + "column_shape"], p + "scale");
        yield return Node("Reshape", [node.Input[2], p + "column_shape"], p + "bias");
        yield return Node("Div", [p + "scale", p + "std"], p + "gain");
        yield return Node("Mul", [p + "m", p + "gain"], p + "shift");
        yield return Node("Sub", [p + "bias", p + "shift"], p + "offset");
        yield return Node("Mul", [x3, p + "gain"], p + "scaled");
        yield return Node("Add", [p + "scaled", p + "offset"], p + "y");
        yield return Node("Shape", [x], p + "x_shape");
        // The original output keeps its name (and its input's shape), so every consumer reads the rewritten value.
        yield return Node("Reshape", [p + "y", p + "x_shape"], node.Output[0]);
    }

    // Reductions take their axes as an attribute until opset 18 and as an input from then on.
    private static NodeProto Reduce(string op, string input, string output, long opset, GraphProto graph, string prefix)
    {
        if (opset >= 18)
        {
            if (graph.Initializer.All(i => i.Name != prefix + "axes"))
            {
                graph.Initializer.Add(Int64s(prefix + "axes", 2));
            }

            var node = Node(op, [input, prefix + "axes"], output);
            node.Attribute.Add(new AttributeProto { Name = "keepdims", I = 1, Type = AttributeProto.Types.AttributeType.Int });
            return node;
        }

        var legacy = Node(op, [input], output);
        legacy.Attribute.Add(new AttributeProto { Name = "axes", Ints = { 2 }, Type = AttributeProto.Types.AttributeType.Ints });
        legacy.Attribute.Add(new AttributeProto { Name = "keepdims", I = 1, Type = AttributeProto.Types.AttributeType.Int });
        return legacy;
    }

    private static NodeProto Node(string op, string[] inputs, string output)
    {
        var node = new NodeProto { OpType = op, Name = output + "/" + op };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        return node;
    }

    /// <summary>Element types of the tensors the graph declares (initializers, constants, inputs, value infos).</summary>
    private static Dictionary<string, int> ElementTypes(GraphProto graph)
    {
        var types = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var value in graph.Input.Concat(graph.ValueInfo).Concat(graph.Output))
        {
            if (value.Type?.TensorType is { } tensor)
            {
                types[value.Name] = tensor.ElemType;
            }
        }

        foreach (var initializer in graph.Initializer)
        {
            types[initializer.Name] = initializer.DataType;
        }

        foreach (var constant in graph.Node.Where(n => n.OpType == "Constant"))
        {
            if (constant.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } value)
            {
                types[constant.Output[0]] = value.DataType;
            }
        }

        return types;
    }

    // No shape: the statistics are [N,G,1] once known, and the own-statistics pass feeds a [1,1,1] placeholder that
    // Where broadcasts away.
    private static TypeProto Statistics(int elementType) => new() { TensorType = new TypeProto.Types.Tensor { ElemType = elementType } };

    private static TypeProto TensorType(int elementType, long length) => new()
    {
        TensorType = new TypeProto.Types.Tensor
        {
            ElemType = elementType,
            Shape = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimValue = length } } },
        },
    };

    private static TensorProto Int64s(string name, params long[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        return tensor;
    }

    private static TensorProto Scalar(string name, int elementType, float value)
    {
        var tensor = new TensorProto { Name = name, DataType = elementType };
        switch ((TensorProto.Types.DataType)elementType)
        {
            case TensorProto.Types.DataType.Float:
                tensor.FloatData.Add(value);
                break;
            case TensorProto.Types.DataType.Float16:
                tensor.RawData = ByteString.CopyFrom(BitConverter.GetBytes((Half)value));
                break;
            case TensorProto.Types.DataType.Double:
                tensor.DoubleData.Add(value);
                break;
            default:
                throw new ModelFormatException($"GroupNorm of element type {elementType} is not supported; expected float32, float16 or float64.");
        }

        return tensor;
    }
}
