using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace RenderFarm.Diffusion.Models;

/// <summary>One-shot runs (text encoder, VAE) that happen once per image, where clarity beats buffer reuse.</summary>
internal static class ComponentRunner
{
    /// <summary>Runs a single float-in, float-out component, converting to and from float16 when the model declares it.</summary>
    public static (float[] Data, long[] Shape) RunFloat(OnnxComponent component, string inputName, ReadOnlySpan<float> input, long[] shape, string outputName, RunOptions? runOptions = null)
    {
        using var value = CreateFloatTensor(component.Input(inputName).ElementDataType, input, shape);
        return Run(component, inputName, value, outputName, runOptions);
    }

    public static (float[] Data, long[] Shape) Run(OnnxComponent component, string inputName, OrtValue input, string outputName, RunOptions? runOptions = null)
    {
        using var options = runOptions is null ? new RunOptions() : null;
        using var outputs = component.Session.Run(runOptions ?? options!, [inputName], [input], [outputName]);
        return ToFloat(outputs[0]);
    }

    public static OrtValue CreateFloatTensor(TensorElementType elementType, ReadOnlySpan<float> data, long[] shape)
    {
        if (elementType == TensorElementType.Float16)
        {
            var half = new Float16[data.Length];
            TensorPrimitives.ConvertToHalf(data, MemoryMarshal.Cast<Float16, Half>(half.AsSpan()));
            return OrtValue.CreateTensorValueFromMemory(half, shape);
        }

        return OrtValue.CreateTensorValueFromMemory(data.ToArray(), shape);
    }

    public static (float[] Data, long[] Shape) ToFloat(OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        var shape = info.Shape;
        switch (info.ElementDataType)
        {
            case TensorElementType.Float:
                return (value.GetTensorDataAsSpan<float>().ToArray(), shape);
            case TensorElementType.Float16:
                var source = MemoryMarshal.Cast<Float16, Half>(value.GetTensorDataAsSpan<Float16>());
                var result = new float[source.Length];
                TensorPrimitives.ConvertToSingle(source, result);
                return (result, shape);
            default:
                throw new ModelFormatException($"Output of type {info.ElementDataType} is not supported; expected float32 or float16.");
        }
    }
}
