using RenderFarm.Contracts;
using RenderFarm.Diffusion.Pipelines;

namespace RenderFarm.Worker.Rendering;

/// <summary>
/// Turns a batch of items into PNGs. One instance per slot, never used by two renders at once, so an
/// implementation may keep sessions and buffers warm between calls without locking.
/// </summary>
public interface IItemRenderer : IDisposable
{
    /// <summary>Models whose sessions are loaded now; heartbeats report them so placement can prefer this worker.</summary>
    IReadOnlyCollection<string> LoadedModels { get; }

    /// <summary>
    /// Memory strategy names (joined with '+', e.g. <c>resident</c> or <c>sequential+tiled-vae</c>) of the current or
    /// last render; null before the first, or for a renderer that does not plan memory.
    /// </summary>
    string? MemoryStrategy => null;

    /// <summary>Loads <paramref name="model"/> ahead of the first item, so that item is not the slow one.</summary>
    Task WarmUpAsync(string model, CancellationToken cancellationToken);

    /// <summary>
    /// Renders every item of <paramref name="batch"/> and returns one PNG per item, in the batch's order, each
    /// carrying its generation parameters. Reports every denoising step to <paramref name="progress"/>; rate
    /// limiting is the caller's business. Honours <paramref name="cancellationToken"/> between steps.
    /// </summary>
    /// <exception cref="Models.ModelNotFoundException">The batch's model is unknown here.</exception>
    /// <exception cref="ArgumentException">The batch's settings are invalid; retrying would not help.</exception>
    Task<IReadOnlyList<RenderedImage>> RenderAsync(RenderBatch batch, IProgress<RenderStep>? progress, CancellationToken cancellationToken);
}

/// <summary>
/// Items that share every setting but seed, prompt and output (see <see cref="RenderBatch.SameSettings"/>), with
/// the decoded inputs of img2img and inpaint.
/// </summary>
/// <param name="Items">At least one item; all share model, size, steps, guidance, sampler, mode, strength and inputs.</param>
/// <param name="InitImage">Encoded init image (PNG, JPEG or WebP) for img2img and inpaint.</param>
/// <param name="Mask">Encoded mask for inpaint.</param>
public sealed record RenderBatch(IReadOnlyList<RenderItem> Items, ReadOnlyMemory<byte>? InitImage = null, ReadOnlyMemory<byte>? Mask = null)
{
    /// <summary>The item whose settings stand for the whole batch.</summary>
    public RenderItem First => Items[0];

    /// <summary>The job's safety-checker mode name (<see cref="RenderWorkUnit.Safety"/>); null: the engine's default.</summary>
    public string? Safety { get; init; }

    /// <summary>The job's watermark payload (<see cref="RenderWorkUnit.Watermark"/>); null: the farm's, if any.</summary>
    public string? Watermark { get; init; }

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> can be denoised in one engine call.</summary>
    public static bool SameSettings(RenderItem a, RenderItem b) =>
        a.Model == b.Model
        && a.Width == b.Width
        && a.Height == b.Height
        && a.Steps == b.Steps
        && a.GuidanceScale.Equals(b.GuidanceScale)
        && a.Sampler == b.Sampler
        && a.Mode == b.Mode
        && Nullable.Equals(a.Strength, b.Strength)
        && a.InitImageKey == b.InitImageKey
        && a.MaskKey == b.MaskKey
        // Each hires tile is img2img of its own region (one init image per engine call), and a stitch is no render.
        && a.Mode is not (RenderModes.HiresTile or RenderModes.HiresStitch);

    /// <summary>
    /// Splits <paramref name="items"/> into batches of items with the same settings, at most
    /// <paramref name="maxBatchSize"/> each, keeping the order of first appearance.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<RenderItem>> Plan(IReadOnlyList<RenderItem> items, int maxBatchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchSize, 1);
        var groups = new List<List<RenderItem>>();
        foreach (var item in items)
        {
            var group = groups.Find(g => SameSettings(g[0], item));
            if (group is null)
            {
                groups.Add([item]);
            }
            else
            {
                group.Add(item);
            }
        }

        return groups.SelectMany(g => g.Chunk(maxBatchSize)).Select(c => (IReadOnlyList<RenderItem>)c).ToList();
    }
}

/// <summary>One finished item.</summary>
/// <param name="ItemId">The item.</param>
/// <param name="Png">PNG bytes with the generation parameters in its <c>parameters</c> chunk.</param>
/// <param name="ModelHash">The content hash of the model that rendered it, when a model did.</param>
/// <param name="Safety">The safety checker's outcome (<c>passed</c>, <c>flagged</c>, <c>blurred</c>, <c>blocked</c>); null when none ran.</param>
public sealed record RenderedImage(Guid ItemId, byte[] Png, string? ModelHash = null, string? Safety = null)
{
    /// <summary>The checker blocked it: the image must not be stored (its pixels are black).</summary>
    public bool Blocked => Safety == "blocked";
}

/// <summary>A denoising step of the batch finished.</summary>
/// <param name="Step">Steps done, 1-based.</param>
/// <param name="TotalSteps">Steps in all.</param>
/// <param name="Latents">
/// The batch's latents after this step (image i is the batch's item i), for previews; valid only during
/// <see cref="IProgress{T}.Report"/>. Null from renderers with no latents (the null renderer, the hires stitch).
/// </param>
public readonly record struct RenderStep(int Step, int TotalSteps, LatentPreviewSource? Latents = null);
