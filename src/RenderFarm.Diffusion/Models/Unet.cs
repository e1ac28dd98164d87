using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using RenderFarm.Diffusion.Pipelines;

namespace RenderFarm.Diffusion.Models;

/// <summary>
/// The denoising UNet: <c>sample</c>, <c>timestep</c>, <c>encoder_hidden_states</c> → <c>out_sample</c>; SDXL's also
/// takes <c>text_embeds</c> [batch, P] and <c>time_ids</c> [batch, 6] (Optimum's names for diffusers' added_cond_kwargs).
/// </summary>
public sealed class Unet
{
    public const string Sample = "sample";
    public const string Timestep = "timestep";
    public const string EncoderHiddenStates = "encoder_hidden_states";
    public const string TextEmbeds = "text_embeds";
    public const string TimeIds = "time_ids";
    public const string OutSample = "out_sample";

    /// <param name="path">The ONNX file.</param>
    /// <param name="options">Provider and threads.</param>
    /// <param name="addedConditioning">SDXL: the UNet must also take <c>text_embeds</c> and <c>time_ids</c>.</param>
    public Unet(string path, ExecutionOptions options, bool addedConditioning = false)
    {
        AddedConditioning = addedConditioning;
        TensorRequirement[] inputs =
        [
            TensorRequirement.Floating(Sample, 4),
            new TensorRequirement(Timestep, [TensorElementType.Int64, TensorElementType.Int32, TensorElementType.Float, TensorElementType.Float16, TensorElementType.Double], 1)
            {
                AcceptsScalar = true,
            },
            TensorRequirement.Floating(EncoderHiddenStates, 3),
        ];
        Component = new OnnxComponent(path, options,
            addedConditioning ? [.. inputs, TensorRequirement.Floating(TextEmbeds, 2), TensorRequirement.Floating(TimeIds, 2)] : inputs,
            [TensorRequirement.Floating(OutSample, 4)]);
    }

    public OnnxComponent Component { get; }

    /// <summary>Whether the UNet takes SDXL's <c>text_embeds</c> and <c>time_ids</c>.</summary>
    public bool AddedConditioning { get; }

    /// <summary>Binds buffers for a run of fixed shape; the binding is reused for every step.</summary>
    internal UnetBinding Bind(int batch, int latentHeight, int latentWidth, PromptConditioning conditioning) =>
        new(this, batch, latentHeight, latentWidth, conditioning);
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
    private readonly ModelTensor? _textEmbeds;
    private readonly ModelTensor? _timeIds;
    private readonly OrtValue _timestep;
    private readonly Action<double> _setTimestep;

    public UnetBinding(Unet unet, int batch, int latentHeight, int latentWidth, PromptConditioning conditioning)
    {
        _session = unet.Component.Session;
        var (hiddenStates, hiddenWidth) = (conditioning.Hidden, conditioning.HiddenWidth);
        if (unet.AddedConditioning != conditioning.TextEmbeds is not null || unet.AddedConditioning != conditioning.TimeIds is not null)
        {
            throw new ArgumentException("SDXL's UNet takes text_embeds and time_ids, and only it does.", nameof(conditioning));
        }

        if (!unet.AddedConditioning && _session.InputMetadata.ContainsKey(Unet.TextEmbeds))
        {
            throw new ModelFormatException(
                $"'{unet.Component.Path}' takes SDXL's text_embeds and time_ids, but its folder has no text_encoder_2/model.onnx to compute them (see models/README.md).");
        }

        long[] latentShape = [batch, 4, latentHeight, latentWidth];
        Input = new ModelTensor(unet.Component.Input(Unet.Sample).ElementDataType, latentShape);
        Output = new ModelTensor(unet.Component.Output(Unet.OutSample).ElementDataType, latentShape);
        var tokens = hiddenStates.Length / batch / hiddenWidth;
        _hidden = new ModelTensor(unet.Component.Input(Unet.EncoderHiddenStates).ElementDataType, [batch, tokens, hiddenWidth]);
        hiddenStates.CopyTo(_hidden.Data, 0);
        _hidden.PushToModel();
        var timestep = unet.Component.Input(Unet.Timestep);
        (_timestep, _setTimestep) = CreateTimestep(timestep.ElementDataType, timestep.Dimensions.Length == 0 ? [] : [1]);

        _binding = _session.CreateIoBinding();
        _binding.BindInput(Unet.Sample, Input.Value);
        _binding.BindInput(Unet.Timestep, _timestep);
        _binding.BindInput(Unet.EncoderHiddenStates, _hidden.Value);
        if (conditioning.TextEmbeds is { } textEmbeds && conditioning.TimeIds is { } timeIds)
        {
            _textEmbeds = Constant(unet.Component.Input(Unet.TextEmbeds).ElementDataType, textEmbeds, [batch, conditioning.TextEmbedsWidth]);
            _timeIds = Constant(unet.Component.Input(Unet.TimeIds).ElementDataType, timeIds, [batch, PromptConditioning.TimeIdCount]);
            _binding.BindInput(Unet.TextEmbeds, _textEmbeds.Value);
            _binding.BindInput(Unet.TimeIds, _timeIds.Value);
        }

        _binding.BindOutput(Unet.OutSample, Output.Value);
    }

    public ModelTensor Input { get; }
    public ModelTensor Output { get; }

    private static ModelTensor Constant(TensorElementType type, float[] values, long[] shape)
    {
        var tensor = new ModelTensor(type, shape);
        if (values.Length != tensor.Data.Length)
        {
            throw new ArgumentException($"Conditioning of {values.Length} values does not fill a [{string.Join(", ", shape)}] tensor.", nameof(values));
        }

        values.CopyTo(tensor.Data, 0);
        tensor.PushToModel();
        return tensor;
    }

    public void Run(double timestep, RunOptions runOptions)
    {
        _setTimestep(timestep);
        Input.PushToModel();
        _session.RunWithBinding(runOptions, _binding);
        Output.PullFromModel();
    }

    // diffusers passes np.array([t], dtype=the model's timestep type): integer types truncate a fractional timestep.
    // Optimum's exports since its SDXL support declare a scalar instead of [1]: the one value is shaped as declared.
    private static (OrtValue, Action<double>) CreateTimestep(TensorElementType type, long[] shape)
    {
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
        _textEmbeds?.Dispose();
        _timeIds?.Dispose();
        _timestep.Dispose();
    }
}
