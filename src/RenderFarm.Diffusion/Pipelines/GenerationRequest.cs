using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Pipelines;

public enum GenerationMode
{
    TextToImage,
    ImageToImage,
    /// <summary>img2img inside a mask; outside it the latent is re-noised from the source every step and the source pixels are kept.</summary>
    Inpaint,
}

/// <summary>One image of a batch: its own prompt, negative prompt and seed.</summary>
public sealed record ImageSpec(string Prompt, string NegativePrompt, ulong Seed);

/// <summary>
/// A batch of images that share size, steps, sampler and guidance, so one UNet call denoises them all.
/// Farm-level rules (limits, allowed values) are checked by the domain before a request gets here; the engine only
/// guards its own invariants.
/// </summary>
public sealed record GenerationRequest
{
    public required IReadOnlyList<ImageSpec> Images { get; init; }
    public int Width { get; init; } = 512;
    public int Height { get; init; } = 512;
    public int Steps { get; init; } = 20;
    public double GuidanceScale { get; init; } = 7.5;
    public string Sampler { get; init; } = SamplerNames.EulerAncestral;
    /// <summary>DDIM's η (0 = deterministic DDIM).</summary>
    public double Eta { get; init; }
    public GenerationMode Mode { get; init; } = GenerationMode.TextToImage;
    /// <summary>Source image for img2img and inpaint; resized to Width×Height if it differs.</summary>
    public RgbImage? InitImage { get; init; }
    /// <summary>Inpaint mask: white (luminance ≥ 128) is repainted, black is kept.</summary>
    public RgbImage? Mask { get; init; }
    /// <summary>img2img/inpaint: the fraction of the schedule that is re-run (1 = start from pure noise).</summary>
    public double Strength { get; init; } = 0.75;
    /// <summary>Render a cheap preview every N steps (0 = never): it costs a pass over the latent.</summary>
    public int PreviewInterval { get; init; }
    /// <summary>
    /// How this render uses memory. Null: the pipeline decides — with a memory budget
    /// (<see cref="Models.ExecutionOptions.MemoryBudgetBytes"/>) and a memory profile its <see cref="MemoryPlanner"/>
    /// picks the cheapest strategy that fits; otherwise <see cref="MemoryStrategy.Resident"/>. Set: used as given,
    /// and refused with <see cref="MemoryBudgetExceededException"/> when a budget is set and it is predicted not to fit.
    /// </summary>
    public MemoryStrategy? Memory { get; init; }

    /// <summary>
    /// What the model's safety checker does (<see cref="Safety.SafetyMode"/>). Null: <c>Flag</c> when the model folder
    /// has a checker, nothing otherwise. Any mode but <c>Off</c> on a model without a checker is refused.
    /// </summary>
    public Safety.SafetyMode? Safety { get; init; }

    /// <summary>
    /// The payload of an invisible watermark (<see cref="Watermarking.DwtDctWatermark"/>) embedded in every kept image
    /// after the safety checker; null for none. Needs images of at least 256×256 pixels.
    /// </summary>
    /// <remarks>An array, not a nullable ReadOnlyMemory: a null array converts silently to an empty, non-null memory.</remarks>
    public byte[]? Watermark { get; init; }

    /// <summary>The shape the memory planner sees for this request.</summary>
    public RenderShape MemoryShape => new(Width, Height, Images.Count, GuidanceScale > 1.0, Steps, Mode != GenerationMode.TextToImage);

    /// <summary>Convenience for one prompt rendered <paramref name="count"/> times with seeds seed, seed+1, …</summary>
    public static IReadOnlyList<ImageSpec> Seeds(string prompt, string negativePrompt, ulong seed, int count) =>
        Enumerable.Range(0, count).Select(i => new ImageSpec(prompt, negativePrompt, seed + (ulong)i)).ToArray();
}

/// <summary>Reported once per denoising step.</summary>
/// <param name="Step">Steps done, 1-based.</param>
/// <param name="TotalSteps">Steps in all.</param>
/// <param name="Preview">The first image's preview, on the steps <see cref="GenerationRequest.PreviewInterval"/> asks for.</param>
public readonly record struct GenerationProgress(int Step, int TotalSteps, RgbImage? Preview)
{
    /// <summary>
    /// The batch's latents as they stand after this step, for a caller that decides by itself (by time, say) when it
    /// wants a preview. Valid only while <see cref="IProgress{T}.Report"/> runs: the next step overwrites them. Null
    /// where no latents exist (reports outside the denoising loop).
    /// </summary>
    public LatentPreviewSource? Latents { get; init; }
}

/// <summary>One finished image with the parameters that reproduce it.</summary>
public sealed record GeneratedImage(int Index, RgbImage Image, GenerationParameters Parameters)
{
    /// <summary>
    /// The safety checker's verdict; null when none ran. When <see cref="Safety.SafetyVerdict.Blocked"/>, <see cref="Image"/>
    /// is black and the image must not be stored.
    /// </summary>
    public Safety.SafetyVerdict? Safety { get; init; }

    /// <summary>PNG bytes carrying <see cref="Parameters"/> in the <c>parameters</c> chunk.</summary>
    public byte[] ToPng() => PngCodec.Encode(Image, Parameters.Format());
}

/// <summary>A prompt that did not fit CLIP's 77 tokens: what was cut.</summary>
public sealed record PromptTruncation(int ImageIndex, bool Negative, string DroppedText);

public sealed record GenerationResult(IReadOnlyList<GeneratedImage> Images, IReadOnlyList<PromptTruncation> Truncations)
{
    /// <summary>The memory strategy the render ran with (chosen by the planner when the request named none).</summary>
    public MemoryStrategy Memory { get; init; } = MemoryStrategy.Resident;
    /// <summary>The plan behind <see cref="Memory"/> when the planner chose it; null otherwise.</summary>
    public MemoryPlan? Plan { get; init; }
}
