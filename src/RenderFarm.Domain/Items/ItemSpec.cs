namespace RenderFarm.Domain.Items;

/// <summary>
/// Everything that determines one image's bytes. Recorded with the item so every image can be reproduced
/// and its parameters shown.
/// </summary>
/// <param name="Index">Position in the job's expansion, 0-based.</param>
/// <param name="Seed">Noise seed.</param>
/// <param name="Prompt">Text the image should show.</param>
/// <param name="NegativePrompt">Empty when the request had none, so the engine sees one unconditional input.</param>
/// <param name="Width">Pixels.</param>
/// <param name="Height">Pixels.</param>
/// <param name="Steps">Denoising steps.</param>
/// <param name="GuidanceScale">Classifier-free guidance scale.</param>
/// <param name="Sampler">One of <see cref="Requests.KnownSamplers"/>.</param>
/// <param name="Model">Resolved model name (never null: the host's default fills in).</param>
/// <param name="Mode">One of <see cref="Contracts.RenderModes"/>.</param>
/// <param name="Strength">Set for img2img and inpaint only.</param>
/// <param name="InitImage">Artifact key; set for img2img and inpaint only.</param>
/// <param name="Mask">Artifact key; set for inpaint only.</param>
public sealed record ItemSpec(
    long Index,
    long Seed,
    string Prompt,
    string NegativePrompt,
    int Width,
    int Height,
    int Steps,
    double GuidanceScale,
    string Sampler,
    string Model,
    string Mode,
    double? Strength,
    string? InitImage,
    string? Mask)
{
    /// <summary>The settings that must match for items to share one batched engine call.</summary>
    public BatchKey BatchKey => new(Model, Width, Height, Sampler, Steps, GuidanceScale, Mode, Strength);
}

/// <summary>
/// Settings that items in one work unit share. Prompts, seeds and init images may differ inside a batch;
/// these may not, because they fix the tensor shapes, the model session or the scheduler's timesteps.
/// </summary>
public readonly record struct BatchKey(
    string Model,
    int Width,
    int Height,
    string Sampler,
    int Steps,
    double GuidanceScale,
    string Mode,
    double? Strength);
