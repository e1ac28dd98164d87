namespace RenderFarm.ModelGenerator;

/// <summary>Variants of the oracle model, so the engine's tensor type handling can be tested against exact math.</summary>
/// <param name="Float16">Every float input and output of every model is float16 (the graphs cast at the edges and compute in float32).</param>
/// <param name="FloatTimestep">The UNet's <c>timestep</c> input is float32 (fractional timesteps pass through) instead of int64.</param>
public sealed record OracleModelOptions(bool Float16 = false, bool FloatTimestep = false);
