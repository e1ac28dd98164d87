namespace RenderFarm.ModelGenerator;

/// <summary>Variants of the tiny model.</summary>
/// <param name="Float16">
/// Every float input and output is float16, as in an fp16 export; weights and arithmetic stay float32 inside
/// (casts at the edges), so this tests the engine's type handling, not fp16 memory savings.
/// </param>
/// <param name="Family">Which Stable Diffusion layout it miniaturises (see <see cref="TinyFamily"/>).</param>
public sealed record TinyModelOptions(bool Float16 = false, TinyFamily Family = TinyFamily.StableDiffusion1);

/// <summary>The Stable Diffusion generation a tiny model stands for.</summary>
public enum TinyFamily
{
    /// <summary>SD 1.x: a CLIP ViT-L text encoder (quick-GELU, width 768 in the real model), ε-prediction, 512².</summary>
    StableDiffusion1,

    /// <summary>
    /// SD 2.x 768-v: an OpenCLIP ViT-H text encoder (exact GELU, a third wider: 1024 in the real model),
    /// v-prediction (<c>prediction_type: v_prediction</c> in the scheduler config), 768² by default.
    /// </summary>
    StableDiffusion2,

    /// <summary>
    /// SDXL base: two text encoders (CLIP ViT-L and OpenCLIP ViT-bigG with a projected pooled output) whose
    /// penultimate hidden states are concatenated, a UNet with added conditioning (<c>text_embeds</c>, <c>time_ids</c>),
    /// EulerDiscrete's scheduler config, VAE scaling 0.13025, 1024² by default.
    /// </summary>
    StableDiffusionXL,
}
