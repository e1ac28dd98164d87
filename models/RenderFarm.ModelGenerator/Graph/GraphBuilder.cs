using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using RenderFarm.Onnx;

namespace RenderFarm.ModelGenerator.Graph;

/// <summary>ONNX element types the generator uses (values are ONNX's <c>TensorProto.DataType</c>).</summary>
internal enum ElementType
{
    Float = 1,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Float16 = 10,
}

/// <summary>One dimension of a declared input/output shape: a fixed size or a named dynamic axis.</summary>
internal readonly record struct Dim(long Value, string? Param)
{
    public static implicit operator Dim(int value) => new(value, null);

    public static implicit operator Dim(long value) => new(value, null);

    public static implicit operator Dim(string param) => new(0, param);
}

/// <summary>Attribute constructors, so node calls read like the ONNX operator documentation.</summary>
internal static class Attr
{
    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Str(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.Add(values);
        return attribute;
    }
}

/// <summary>
/// A small fluent builder over the ONNX protobuf types: it hands out unique value names, keeps
/// initializers and nodes in order, and offers the handful of operators the generated models need,
/// so model code reads as architecture rather than protobuf plumbing.
/// </summary>
internal sealed class GraphBuilder
{
    public const int OpsetVersion = 17;

    // IR 8 (ONNX 1.10+): loadable by every ONNX Runtime since 1.10 and by the onnx checker of that era.
    public const long IrVersion = 8;

    private readonly GraphProto graph;
    private readonly HashSet<string> names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> counters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> sharedConstants = new(StringComparer.Ordinal);
    private readonly Stack<string> scopes = new();

    public GraphBuilder(string name)
    {
        graph = new GraphProto { Name = name };
    }

    /// <summary>Prefixes the names of everything created until the returned scope is disposed.</summary>
    public IDisposable Scope(string name)
    {
        scopes.Push(name);
        return new ScopeExit(scopes);
    }

    public string Input(string name, ElementType type, params Dim[] shape)
    {
        Reserve(name);
        graph.Input.Add(ValueInfo(name, type, shape));
        return name;
    }

    /// <summary>Declares <paramref name="value"/> as the graph output <paramref name="name"/>.</summary>
    public void Output(string value, string name, ElementType type, params Dim[] shape)
    {
        Reserve(name);
        Emit("Identity", [value], [name], []);
        graph.Output.Add(ValueInfo(name, type, shape));
    }

    /// <summary>Number of float values in <see cref="Weight"/> initializers (the model's parameters).</summary>
    public long ParameterCount { get; private set; }

    public string Weight(string name, ReadOnlySpan<float> data, params long[] dims)
    {
        long count = dims.Aggregate(1L, (a, b) => a * b);
        if (count != data.Length)
        {
            throw new ArgumentException($"Initializer {name}: {data.Length} values for shape [{string.Join(',', dims)}].", nameof(data));
        }

        var tensor = new TensorProto
        {
            Name = Unique(name),
            DataType = (int)ElementType.Float,
            // Raw little-endian bytes: compact, and exactly what exporters write (x86/ARM are little-endian).
            RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data)),
        };
        tensor.Dims.Add(dims);
        graph.Initializer.Add(tensor);
        ParameterCount += count;
        return tensor.Name;
    }

    /// <summary>A 1-D int64 constant (shapes, axes, indices); identical values share one initializer.</summary>
    public string Int64s(params long[] values) =>
        Shared("i64:" + string.Join(',', values), "const_i64", name =>
        {
            var tensor = new TensorProto { Name = name, DataType = (int)ElementType.Int64 };
            tensor.Dims.Add(values.Length);
            tensor.Int64Data.Add(values);
            return tensor;
        });

    /// <summary>A scalar float constant; identical values share one initializer.</summary>
    public string Scalar(float value) =>
        Shared("f32:" + value.ToString("R", CultureInfo.InvariantCulture), "const_f32", name =>
        {
            var tensor = new TensorProto { Name = name, DataType = (int)ElementType.Float };
            tensor.FloatData.Add(value);
            return tensor;
        });

    public string Node(string op, string[] inputs, params AttributeProto[] attributes) =>
        Node(op, inputs, 1, attributes)[0];

    public string[] Node(string op, string[] inputs, int outputCount, params AttributeProto[] attributes)
    {
        string baseName = Unique(op);
        var outputs = new string[outputCount];
        for (int i = 0; i < outputCount; i++)
        {
            outputs[i] = outputCount == 1 ? baseName : Unique(baseName + "_out" + i.ToString(CultureInfo.InvariantCulture));
        }

        Emit(op, inputs, outputs, attributes, baseName);
        return outputs;
    }

    // Elementwise and shape helpers: one line each, named as the ONNX operators.
    public string Add(string a, string b) => Node("Add", [a, b]);
    public string Sub(string a, string b) => Node("Sub", [a, b]);
    public string Mul(string a, string b) => Node("Mul", [a, b]);
    public string Div(string a, string b) => Node("Div", [a, b]);
    public string Mul(string a, float b) => Mul(a, Scalar(b));
    public string Add(string a, float b) => Add(a, Scalar(b));
    public string MatMul(string a, string b) => Node("MatMul", [a, b]);
    public string Sigmoid(string x) => Node("Sigmoid", [x]);
    public string Tanh(string x) => Node("Tanh", [x]);
    public string Sqrt(string x) => Node("Sqrt", [x]);
    public string Silu(string x) => Mul(x, Sigmoid(x));
    public string Cast(string x, ElementType to) => Node("Cast", [x], Attr.Int("to", (long)to));
    public string Reshape(string x, params long[] shape) => Node("Reshape", [x, Int64s(shape)]);
    public string Reshape(string x, string shape) => Node("Reshape", [x, shape]);
    public string Transpose(string x, params long[] perm) => Node("Transpose", [x], Attr.Ints("perm", perm));
    public string Unsqueeze(string x, params long[] axes) => Node("Unsqueeze", [x, Int64s(axes)]);
    public string Softmax(string x, long axis = -1) => Node("Softmax", [x], Attr.Int("axis", axis));
    public string Concat(long axis, params string[] inputs) => Node("Concat", inputs, Attr.Int("axis", axis));
    public string Shape(string x) => Node("Shape", [x]);

    public string ReduceSum(string x, long axis, bool keepDims) =>
        Node("ReduceSum", [x, Int64s(axis)], Attr.Int("keepdims", keepDims ? 1 : 0));

    public string ReduceMean(string x, long axis, bool keepDims) =>
        // ReduceMean takes axes as an attribute until opset 18.
        Node("ReduceMean", [x], Attr.Ints("axes", axis), Attr.Int("keepdims", keepDims ? 1 : 0));

    public string Conv(string x, string weight, string? bias, int kernel, int stride = 1, int? pad = null)
    {
        int p = pad ?? kernel / 2;
        string[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        return Node("Conv", inputs,
            Attr.Ints("kernel_shape", kernel, kernel),
            Attr.Ints("strides", stride, stride),
            Attr.Ints("pads", p, p, p, p));
    }

    /// <summary>Exact nearest-neighbour upsampling by an integer factor on the last two axes.</summary>
    public string UpsampleNearest(string x, int factor)
    {
        string scales = Shared("scales:" + factor.ToString(CultureInfo.InvariantCulture), "upsample_scales", name =>
        {
            var tensor = new TensorProto { Name = name, DataType = (int)ElementType.Float };
            tensor.Dims.Add(4);
            tensor.FloatData.Add([1f, 1f, factor, factor]);
            return tensor;
        });
        return Node("Resize", [x, "", scales],
            Attr.Str("mode", "nearest"),
            Attr.Str("coordinate_transformation_mode", "asymmetric"),
            Attr.Str("nearest_mode", "floor"));
    }

    public ModelProto Build(string docString)
    {
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "RenderFarm.ModelGenerator",
            ProducerVersion = TestModels.GeneratorVersion,
            DocString = docString,
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OpsetVersion });
        return model;
    }

    /// <summary>The name <paramref name="hint"/> gets inside the current scopes, before any de-duplication.</summary>
    public string ScopedName(string hint) =>
        scopes.Count == 0 ? hint : string.Join('/', scopes.Reverse()) + "/" + hint;

    public string Unique(string hint)
    {
        string name = ScopedName(hint);
        if (names.Add(name))
        {
            return name;
        }

        counters.TryGetValue(name, out int n);
        string candidate;
        do
        {
            n++;
            candidate = name + "_" + n.ToString(CultureInfo.InvariantCulture);
        }
        while (!names.Add(candidate));

        counters[name] = n;
        return candidate;
    }

    private string Shared(string key, string hint, Func<string, TensorProto> create)
    {
        if (!sharedConstants.TryGetValue(key, out string? name))
        {
            // Shared constants live outside any scope: they are reused across the whole graph.
            var saved = scopes.ToArray();
            scopes.Clear();
            name = Unique(hint);
            for (int i = saved.Length - 1; i >= 0; i--)
            {
                scopes.Push(saved[i]);
            }

            graph.Initializer.Add(create(name));
            sharedConstants[key] = name;
        }

        return name;
    }

    private void Reserve(string name)
    {
        if (!names.Add(name))
        {
            throw new InvalidOperationException($"Graph value name '{name}' is already in use.");
        }
    }

    private void Emit(string op, string[] inputs, string[] outputs, AttributeProto[] attributes, string? nodeName = null)
    {
        var node = new NodeProto { OpType = op, Name = nodeName ?? Unique(op + "_node") };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        node.Attribute.Add(attributes);
        graph.Node.Add(node);
    }

    private static ValueInfoProto ValueInfo(string name, ElementType type, Dim[] shape)
    {
        var tensorShape = new TensorShapeProto();
        foreach (var dim in shape)
        {
            tensorShape.Dim.Add(dim.Param is null
                ? new TensorShapeProto.Types.Dimension { DimValue = dim.Value }
                : new TensorShapeProto.Types.Dimension { DimParam = dim.Param });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = tensorShape } },
        };
    }

    private sealed class ScopeExit(Stack<string> scopes) : IDisposable
    {
        public void Dispose() => scopes.Pop();
    }
}
