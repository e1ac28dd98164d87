using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace RenderFarm.Diffusion.Models;

/// <summary>
/// CLIP text encoder: <c>input_ids</c> [batch, 77] → <c>last_hidden_state</c> [batch, 77, D]. SDXL's encoders, exported
/// with hidden states, also give <c>hidden_states.0..L</c> (the residual stream after each layer) and, for the
/// second, <c>text_embeds</c> [batch, P] (the projected pooled output).
/// </summary>
public sealed class TextEncoder
{
    public const string InputIds = "input_ids";
    public const string LastHiddenState = "last_hidden_state";
    public const string TextEmbeds = "text_embeds";
    public const string HiddenStatesPrefix = "hidden_states.";

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
        var (hidden, shape) = Encode(tokenRows, LastHiddenState)[0];
        return (hidden, checked((int)shape[2]));
    }

    /// <summary>Encodes each row of token ids and returns the named outputs, in order, as float32.</summary>
    public IReadOnlyList<(float[] Data, long[] Shape)> Encode(IReadOnlyList<int[]> tokenRows, params string[] outputNames)
    {
        ArgumentOutOfRangeException.ThrowIfZero(tokenRows.Count);
        foreach (var name in outputNames)
        {
            if (!Component.Session.OutputMetadata.ContainsKey(name))
            {
                throw new ModelFormatException($"'{Component.Path}' has no output '{name}' (it has {string.Join(", ", Component.Session.OutputNames)}).");
            }
        }

        var length = tokenRows[0].Length;
        long[] shape = [tokenRows.Count, length];
        using var input = Component.Input(InputIds).ElementDataType == TensorElementType.Int64
            ? OrtValue.CreateTensorValueFromMemory(tokenRows.SelectMany(r => r.Select(i => (long)i)).ToArray(), shape)
            : OrtValue.CreateTensorValueFromMemory(tokenRows.SelectMany(r => r).ToArray(), shape);
        using var runOptions = new RunOptions();
        using var outputs = Component.Session.Run(runOptions, [InputIds], [input], outputNames);
        return [.. outputs.Select(ComponentRunner.ToFloat)];
    }

    /// <summary>
    /// The output SDXL conditions on: the penultimate hidden state, transformers' <c>hidden_states[-2]</c>, which an
    /// Optimum export with hidden states names <c>hidden_states.{L-1}</c> of <c>hidden_states.0..L</c> (L layers).
    /// </summary>
    public string PenultimateHiddenStates
    {
        get
        {
            var layers = Component.Session.OutputNames
                .Where(n => n.StartsWith(HiddenStatesPrefix, StringComparison.Ordinal))
                .Select(n => int.TryParse(n.AsSpan(HiddenStatesPrefix.Length), out var i) ? i : -1)
                .Where(i => i >= 0)
                .ToList();
            if (layers.Count < 2)
            {
                throw new ModelFormatException(
                    $"'{Component.Path}' has no hidden-state outputs (hidden_states.0..L): SDXL conditions on the penultimate layer, " +
                    "so its text encoders must be exported with output_hidden_states (Optimum's SDXL export does this).");
            }

            return HiddenStatesPrefix + (layers.Max() - 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}
