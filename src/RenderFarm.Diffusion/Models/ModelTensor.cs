using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace RenderFarm.Diffusion.Models;

/// <summary>
/// A float32 working buffer bound to a model tensor of the model's own element type. For float32 models the OrtValue
/// wraps the buffer itself; for float16 models a staging array of the same length is converted on the way in and out.
/// Allocated once per run so the denoising loop allocates nothing.
/// </summary>
internal sealed class ModelTensor : IDisposable
{
    private readonly Float16[]? _staging;

    public ModelTensor(TensorElementType elementType, long[] shape)
    {
        var length = checked((int)shape.Aggregate(1L, (a, b) => a * b));
        Data = new float[length];
        Shape = shape;
        switch (elementType)
        {
            case TensorElementType.Float:
                Value = OrtValue.CreateTensorValueFromMemory(Data, shape);
                break;
            case TensorElementType.Float16:
                _staging = new Float16[length];
                Value = OrtValue.CreateTensorValueFromMemory(_staging, shape);
                break;
            default:
                throw new ModelFormatException($"Unsupported tensor element type {elementType}; the engine runs float32 and float16 models.");
        }
    }

    /// <summary>The engine-side values, always float32.</summary>
    public float[] Data { get; }
    public long[] Shape { get; }
    public OrtValue Value { get; }

    /// <summary>Makes <see cref="Data"/> visible to the model (no-op for float32).</summary>
    public void PushToModel()
    {
        if (_staging is not null)
        {
            TensorPrimitives.ConvertToHalf(Data, MemoryMarshal.Cast<Float16, Half>(_staging.AsSpan()));
        }
    }

    /// <summary>Makes the model's output visible in <see cref="Data"/> (no-op for float32).</summary>
    public void PullFromModel()
    {
        if (_staging is not null)
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(_staging.AsSpan()), Data);
        }
    }

    public void Dispose() => Value.Dispose();
}
