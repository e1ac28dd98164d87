namespace RenderFarm.ModelGenerator;

/// <summary>Variants of the tiny model.</summary>
/// <param name="Float16">
/// Every float input and output is float16, as in an fp16 export; weights and arithmetic stay float32 inside
/// (casts at the edges), so this tests the engine's type handling, not fp16 memory savings.
/// </param>
public sealed record TinyModelOptions(bool Float16 = false);
