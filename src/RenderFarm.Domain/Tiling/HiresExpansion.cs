using RenderFarm.Contracts;
using RenderFarm.Domain.Items;
using RenderFarm.Domain.Requests;

namespace RenderFarm.Domain.Tiling;

/// <summary>One item of a hires job: what it renders, and its part in the job.</summary>
public sealed record HiresItem(ItemSpec Spec, HiresPart Part);

/// <summary>
/// The items a hires job expands into: item 0 renders the base, items 1..N refine the tiles (tile <c>t</c> is item
/// <c>t + 1</c>), and item N + 1 stitches them. Derived exactly as the single-machine <c>HiresPipeline</c> derives them
/// (base seed = job seed; tile seed and prompt from <see cref="TileDerivation"/>), so a farm hires job and
/// <c>renderfarm render</c> of the same request make the same image.
/// </summary>
public sealed class HiresExpansion
{
    /// <summary>Index of the base item.</summary>
    public const long BaseIndex = 0;

    private readonly JobRequest _request;
    private readonly Func<long, string> _imageKey;

    private HiresExpansion(JobRequest request, ResolvedHires hires, long seed, string model, Func<long, string> imageKey, HiresBaseImage? baseImage)
    {
        _request = request;
        _imageKey = imageKey;
        Hires = hires;
        Grid = hires.CreateGrid();
        Seed = seed;
        Model = model;
        BaseImage = baseImage;
        BaseImageKey = baseImage?.Key ?? imageKey(BaseIndex);
    }

    /// <summary>The resolved hires settings (defaults filled in).</summary>
    public ResolvedHires Hires { get; }

    /// <summary>The tile grid of the final image.</summary>
    public TileGrid Grid { get; }

    /// <summary>The job's seed: the base render's seed and the root of every tile's seed.</summary>
    public long Seed { get; }

    public string Model { get; }

    /// <summary>The client's base image, when it gave one instead of having the base rendered.</summary>
    public HiresBaseImage? BaseImage { get; }

    /// <summary>Where the tiles and the stitch read the base image from.</summary>
    public string BaseImageKey { get; }

    public int TileCount => Grid.Tiles.Count;

    /// <summary>
    /// The strength the tiles and the stitch carry: 0 for an upscale job, which the worker takes as "upscale the
    /// region only, no img2img" (a refinement's strength is always above 0, so 0 cannot mean anything else).
    /// </summary>
    public double TileStrength => _request.Mode == RenderModes.Upscale ? UpscaleOnlyStrength : Hires.Strength;

    /// <summary>The strength of a tile that is only upscaled (see <see cref="TileStrength"/>).</summary>
    public const double UpscaleOnlyStrength = 0;

    /// <summary>Items in all: base, tiles, stitch.</summary>
    public long Count => TileCount + 2L;

    /// <summary>Index of the stitch item (the last).</summary>
    public long StitchIndex => TileCount + 1L;

    /// <summary>Expands a hires request that <see cref="JobRequestValidator"/> has passed.</summary>
    /// <param name="request">A validated request of mode hires.</param>
    /// <param name="limits">The limits it was validated with (resolving applies the same defaults).</param>
    /// <param name="seedIfUnset">Seed to use when the request names none (the host draws it).</param>
    /// <param name="modelIfUnset">The host's default model.</param>
    /// <param name="imageKey">Artifact key of the image of the item at an index (the host's storage layout).</param>
    /// <param name="baseImage">The stored init image, which replaces the base render; null to render the base.</param>
    /// <param name="modelSide">The native side of the job's model, which the tile, overlap and base default to (<see cref="HiresSpec.ModelSide"/>).</param>
    /// <exception cref="ArgumentException">The request is not a valid hires request.</exception>
    public static HiresExpansion For(JobRequest request, ValidationLimits limits, long seedIfUnset, string modelIfUnset, Func<long, string> imageKey, HiresBaseImage? baseImage = null,
        int modelSide = HiresLimits.DefaultModelSide)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(imageKey);
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIfUnset);
        if (!RenderModes.IsTiled(request.Mode))
        {
            throw new ArgumentException($"Mode is {request.Mode}, not {RenderModes.Hires} or {RenderModes.Upscale}.", nameof(request));
        }

        if (request.Mode == RenderModes.Upscale && baseImage is null)
        {
            throw new ArgumentException($"A {RenderModes.Upscale} job needs its image as the base.", nameof(baseImage));
        }

        var hires = HiresRequestRules.Resolve(JobRequestValidator.HiresSpecOf(request, modelSide), limits.Hires, limits.MaxPixels);
        return new HiresExpansion(request, hires, request.Seed ?? seedIfUnset, request.Model ?? modelIfUnset, imageKey, baseImage);
    }

    /// <summary>Index of the item that refines tile <paramref name="tileIndex"/>.</summary>
    public static long ItemIndexOfTile(int tileIndex) => tileIndex + 1L;

    /// <summary>The tile an item refines, or null for the base and the stitch.</summary>
    public static int? TileIndexOfItem(long itemIndex, int tileCount) =>
        itemIndex >= 1 && itemIndex <= tileCount ? (int)(itemIndex - 1) : null;

    /// <summary>The base render: txt2img at the base size with the job's seed (or the client's image, already done).</summary>
    public HiresItem Base => new(
        Spec(BaseIndex, Seed, _request.Prompt, BaseImage?.Width ?? Hires.BaseWidth, BaseImage?.Height ?? Hires.BaseHeight, RenderModes.Txt2Img, strength: null),
        Part(HiresRoles.Base, tileIndex: -1, baseImageKey: null, tileKeys: null));

    /// <summary>The tiles, in index order: img2img of the tile's region of the upscaled base.</summary>
    public IEnumerable<HiresItem> Tiles => Grid.Tiles.Select(t => new HiresItem(
        Spec(ItemIndexOfTile(t.Index), TileDerivation.Seed(Seed, t.Index), TileDerivation.Prompt(_request.Prompt, t.Index), t.Width, t.Height, RenderModes.HiresTile, TileStrength),
        Part(HiresRoles.Tile, t.Index, BaseImageKey, tileKeys: null)));

    /// <summary>
    /// The stitch: the tiles blended into the final image. It carries the job's own parameters (seed, prompt, steps,
    /// strength at the target size), which are what the final PNG records.
    /// </summary>
    public HiresItem Stitch => new(
        Spec(StitchIndex, Seed, _request.Prompt, Hires.Width, Hires.Height, RenderModes.HiresStitch, TileStrength),
        Part(HiresRoles.Stitch, tileIndex: -1, BaseImageKey, [.. Enumerable.Range(0, TileCount).Select(t => _imageKey(ItemIndexOfTile(t)))]));

    /// <summary>Every item in index order.</summary>
    public IEnumerable<HiresItem> Items => [Base, .. Tiles, Stitch];

    /// <summary>
    /// The model the items name, which workers load and placement ranks by: the job's model, or for an upscale job its
    /// upscaler (no item of it opens a Stable Diffusion model, so a worker without one can take them all).
    /// </summary>
    public string ItemModel => _request.Mode == RenderModes.Upscale && _request.Upscaler is { } upscaler ? upscaler : Model;

    private ItemSpec Spec(long index, long seed, string prompt, int width, int height, string mode, double? strength) => new(
        index, seed, prompt, _request.NegativePrompt ?? string.Empty, width, height, _request.Steps, _request.GuidanceScale,
        _request.Sampler, ItemModel, mode, strength, InitImage: null, Mask: null);

    private HiresPart Part(string role, int tileIndex, string? baseImageKey, IReadOnlyList<string>? tileKeys) =>
        new(role, Hires.Width, Hires.Height, Hires.Tile, Hires.Overlap, tileIndex, TileCount, baseImageKey, tileKeys,
            role == HiresRoles.Base ? null : _request.Upscaler);
}

/// <summary>A base image the client supplied: where it is stored and its size.</summary>
public sealed record HiresBaseImage(string Key, int Width, int Height);
