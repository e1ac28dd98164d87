using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace RenderFarm.ModelGenerator.Tests;

/// <summary>Small ONNX Runtime helpers: run a session with named tensors and read outputs back as float arrays.</summary>
internal static class Ort
{
    public static InferenceSession Open(string modelDirectory, string relativePath) =>
        new(Path.Combine(modelDirectory, relativePath));

    public static Dictionary<string, (float[] Data, int[] Shape)> Run(InferenceSession session, params NamedOnnxValue[] inputs)
    {
        using var results = session.Run(inputs);
        var outputs = new Dictionary<string, (float[], int[])>(StringComparer.Ordinal);
        foreach (var result in results)
        {
            outputs[result.Name] = result.Value switch
            {
                Tensor<float> t => (t.ToArray(), t.Dimensions.ToArray()),
                Tensor<Float16> t => (t.ToArray().Select(ToFloat).ToArray(), t.Dimensions.ToArray()),
                _ => throw new InvalidOperationException($"Unexpected output type for {result.Name}."),
            };
        }

        return outputs;
    }

    public static NamedOnnxValue Floats(string name, float[] data, params int[] shape) =>
        NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(data, shape));

    public static NamedOnnxValue Halves(string name, float[] data, params int[] shape) =>
        NamedOnnxValue.CreateFromTensor(name, new DenseTensor<Float16>(data.Select(ToHalf).ToArray(), shape));

    public static NamedOnnxValue Int32s(string name, int[] data, params int[] shape) =>
        NamedOnnxValue.CreateFromTensor(name, new DenseTensor<int>(data, shape));

    public static NamedOnnxValue Int64s(string name, long[] data, params int[] shape) =>
        NamedOnnxValue.CreateFromTensor(name, new DenseTensor<long>(data, shape));

    public static Float16 ToHalf(float x) => new(BitConverter.HalfToUInt16Bits((Half)x));

    public static float ToFloat(Float16 x) => (float)BitConverter.UInt16BitsToHalf(x.value);

    /// <summary>Rounds through float16, for references that must see the same inputs as a float16 model.</summary>
    public static float[] RoundToHalf(float[] data) => data.Select(x => (float)(Half)x).ToArray();
}
