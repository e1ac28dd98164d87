using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace RenderFarm.Diffusion.Models;

/// <summary>CLIP text encoder: <c>input_ids</c> [batch, 77] → <c>last_hidden_state</c> [batch, 77, D].</summary>
public sealed class TextEncoder
{
    public const string InputIds = "input_ids";
    public const string LastHiddenState = "last_hidden_state";

    public TextEncoder(string path, ExecutionOptions options)
    {
        Component = new OnnxComponent(path, options,
            [new TensorRequirement(InputIds, [TensorElementType.Int32, TensorElementType.Int64], 2)],
            [TensorRequirement.Floating(LastHiddenState, 3)]);
    }

    public OnnxComponent Component { get; }

    /// <summary>Encodes each row of token ids; returns the hidden states of all rows, contiguous, and the width D.</summary>
    public (float[] Hidden, int Width) Encode(IReadOnlyList<int[]> tokenRows)
    {
        ArgumentOutOfRangeException.ThrowIfZero(tokenRows.Count);
        var length = tokenRows[0].Length;
        long[] shape = [tokenRows.Count, length];
        using var input = Component.Input(InputIds).ElementDataType == TensorElementType.Int64
            ? OrtValue.CreateTensorValueFromMemory(tokenRows.SelectMany(r => r.Select(i => (long)i)).ToArray(), shape)
            : OrtValue.CreateTensorValueFromMemory(tokenRows.SelectMany(r => r).ToArray(), shape);
        var (hidden, outShape) = ComponentRunner.Run(Component, InputIds, input, LastHiddenState);
        return (hidden, checked((int)outShape[2]));
    }
}
