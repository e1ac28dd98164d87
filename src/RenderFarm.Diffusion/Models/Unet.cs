using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace RenderFarm.Diffusion.Models;

/// <summary>The denoising UNet: <c>sample</c>, <c>timestep</c>, <c>encoder_hidden_states</c> → <c>out_sample</c>.</summary>
public sealed class Unet
{
    public const string Sample = "sample";
    public const string Timestep = "timestep";
    public const string EncoderHiddenStates = "encoder_hidden_states";
    public const string OutSample = "out_sample";

    public Unet(string path, ExecutionOptions options)
    {
        Component = new OnnxComponent(path, options,
            [
                TensorRequirement.Floating(Sample, 4),
                new TensorRequirement(Timestep, [TensorElementType.Int64, TensorElementType.Int32, TensorElementType.Float, TensorElementType.Float16, TensorElementType.Double], 1),
                TensorRequirement.Floating(EncoderHiddenStates, 3),
            ],
            [TensorRequirement.Floating(OutSample, 4)]);
    }

    public OnnxComponent Component { get; }

    /// <summary>Binds buffers for a run of fixed shape; the binding is reused for every step.</summary>
    internal UnetBinding Bind(int batch, int latentHeight, int latentWidth, float[] hiddenStates, int hiddenWidth) =>
        new(this, batch, latentHeight, latentWidth, hiddenStates, hiddenWidth);
}

/// <summary>
/// Input, timestep, conditioning and output of the UNet bound once through an <see cref="OrtIoBinding"/>: a step writes
/// into <see cref="Input"/>, calls <see cref="Run"/>, and reads <see cref="Output"/>, with no allocation.
/// </summary>
internal sealed class UnetBinding : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtIoBinding _binding;
    private readonly ModelTensor _hidden;
    private readonly OrtValue _timestep;
    private readonly Action<double> _setTimestep;

    public UnetBinding(Unet unet, int batch, int latentHeight, int latentWidth, float[] hiddenStates, int hiddenWidth)
    {
        _session = unet.Component.Session;
        long[] latentShape = [batch, 4, latentHeight, latentWidth];
        Input = new ModelTensor(unet.Component.Input(Unet.Sample).ElementDataType, latentShape);
        Output = new ModelTensor(unet.Component.Output(Unet.OutSample).ElementDataType, latentShape);
        var tokens = hiddenStates.Length / batch / hiddenWidth;
        _hidden = new ModelTensor(unet.Component.Input(Unet.EncoderHiddenStates).ElementDataType, [batch, tokens, hiddenWidth]);
        hiddenStates.CopyTo(_hidden.Data, 0);
        _hidden.PushToModel();
        (_timestep, _setTimestep) = CreateTimestep(unet.Component.Input(Unet.Timestep).ElementDataType);

        _binding = _session.CreateIoBinding();
        _binding.BindInput(Unet.Sample, Input.Value);
        _binding.BindInput(Unet.Timestep, _timestep);
        _binding.BindInput(Unet.EncoderHiddenStates, _hidden.Value);
        _binding.BindOutput(Unet.OutSample, Output.Value);
    }

    public ModelTensor Input { get; }
    public ModelTensor Output { get; }

    public void Run(double timestep, RunOptions runOptions)
    {
        _setTimestep(timestep);
        Input.PushToModel();
        _session.RunWithBinding(runOptions, _binding);
        Output.PullFromModel();
    }

    // diffusers passes np.array([t], dtype=the model's timestep type): integer types truncate a fractional timestep.
    private static (OrtValue, Action<double>) CreateTimestep(TensorElementType type)
    {
        long[] shape = [1];
        switch (type)
        {
            case TensorElementType.Int64:
            {
                var a = new long[1];
                return (OrtValue.CreateTensorValueFromMemory(a, shape), t => a[0] = (long)t);
            }
            case TensorElementType.Int32:
            {
                var a = new int[1];
                return (OrtValue.CreateTensorValueFromMemory(a, shape), t => a[0] = (int)t);
            }
            case TensorElementType.Float:
            {
                var a = new float[1];
                return (OrtValue.CreateTensorValueFromMemory(a, shape), t => a[0] = (float)t);
            }
            case TensorElementType.Double:
            {
                var a = new double[1];
                return (OrtValue.CreateTensorValueFromMemory(a, shape), t => a[0] = t);
            }
            case TensorElementType.Float16:
            {
                var a = new Float16[1];
                return (OrtValue.CreateTensorValueFromMemory(a, shape), t => a[0] = (Float16)(float)t);
            }
            default:
                throw new ModelFormatException($"UNet timestep of type {type} is not supported.");
        }
    }

    public void Dispose()
    {
        _binding.Dispose();
        Input.Dispose();
        Output.Dispose();
        _hidden.Dispose();
        _timestep.Dispose();
    }
}
