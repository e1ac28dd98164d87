using System.Globalization;
using RenderFarm.Domain.Requests;

namespace RenderFarm.Domain.Tiling;

/// <summary>The hires fields of a request as the client sent them (null = use the default).</summary>
/// <param name="Width">Target width in pixels.</param>
/// <param name="Height">Target height in pixels.</param>
/// <param name="Tile">Tile side in pixels of the final image.</param>
/// <param name="Overlap">Least overlap between neighbouring tiles, in pixels.</param>
/// <param name="Strength">img2img strength of the per-tile refinement.</param>
/// <param name="BaseWidth">Width of the base render at the model's native scale.</param>
/// <param name="BaseHeight">Height of the base render.</param>
/// <param name="ModelSide">
/// The side of the square images the job's model was trained at (512 SD 1.x, 768 SD 2.x 768-v, 1024 SDXL): what the
/// tile, overlap and base default to. Not a request field: the host learns it from the model.
/// </param>
public sealed record HiresSpec(int Width, int Height, int? Tile = null, int? Overlap = null, double? Strength = null, int? BaseWidth = null, int? BaseHeight = null,
    int ModelSide = HiresLimits.DefaultModelSide);

/// <summary>A validated <see cref="HiresSpec"/> with every default filled in.</summary>
public sealed record ResolvedHires(int Width, int Height, int Tile, int Overlap, double Strength, int BaseWidth, int BaseHeight)
{
    /// <summary>The tile grid these settings cut the image into.</summary>
    public TileGrid CreateGrid() => TileGrid.Create(Width, Height, Tile, Overlap);
}

/// <summary>Configurable bounds for hires jobs; hosts bind them from configuration next to <see cref="ValidationLimits"/>.</summary>
public sealed record HiresLimits
{
    /// <summary>16384 × 16384: the minimum; time, not memory, bounds larger images (tiles stream, stitching is banded).</summary>
    public const long DefaultMaxPixels = 16384L * 16384L;

    /// <summary>PNG allows 2^31 − 1, but a row this wide already needs a 192 KiB scanline and a tile row of memory in the stitcher.</summary>
    public const int DefaultMaxSide = 65536;

    /// <summary>Each tile is a queue item and a row in the job; beyond this the bookkeeping outweighs the rendering.</summary>
    public const long DefaultMaxTiles = 65536;

    /// <summary>Below 64 px a tile is 8 latent cells, too little context for the UNet to refine anything.</summary>
    public const int MinTile = 64;

    /// <summary>Beyond 2048 px a tile is itself a "large image" for SD 1.x; the memory strategies handle it, but the farm gains nothing.</summary>
    public const int MaxTile = 2048;

    /// <summary>
    /// SD 1.x's native side, the model side a host assumes when it cannot learn the model's own
    /// (<see cref="HiresSpec.ModelSide"/>); the defaults below are this model's.
    /// </summary>
    public const int DefaultModelSide = 512;

    /// <summary>SD 1.x's default tile: the model's native side (<see cref="HiresRequestRules.DefaultTile"/>), one UNet window.</summary>
    public const int DefaultTile = 512;

    /// <summary>SD 1.x's default overlap: an eighth of the model's side (<see cref="HiresRequestRules.DefaultOverlap"/>).</summary>
    public const int DefaultOverlap = 64;

    /// <summary>Ultimate SD Upscale's usual range is 0.2–0.4: enough to add detail, too little to invent new objects per tile.</summary>
    public const double DefaultStrength = 0.35;

    /// <summary>SD 1.x's default base render's area: its native 512², at the target's aspect ratio (<see cref="HiresRequestRules.DefaultBaseSize(int, int, int)"/>).</summary>
    public const int DefaultBaseSide = 512;

    public static HiresLimits Default { get; } = new();

    /// <summary>Largest target width × height.</summary>
    public long MaxPixels { get; init; } = DefaultMaxPixels;

    /// <summary>Largest target width or height.</summary>
    public int MaxSide { get; init; } = DefaultMaxSide;

    /// <summary>Largest number of tiles a job may cut into.</summary>
    public long MaxTiles { get; init; } = DefaultMaxTiles;
}

/// <summary>
/// The rules a hires request passes on top of the common job rules (prompt, steps, sampler, seed). Field names are
/// the camelCase JSON names of <c>POST /v1/jobs</c>. <see cref="JobRequestValidator"/> calls this for mode <c>hires</c>
/// instead of its own size check; the base render is checked against the plain txt2img pixel limit.
/// </summary>
public static class HiresRequestRules
{
    /// <summary>Every broken rule (empty when valid).</summary>
    /// <param name="spec">The hires fields.</param>
    /// <param name="limits">Hires bounds; null means <see cref="HiresLimits.Default"/>.</param>
    /// <param name="txt2imgMaxPixels">The plain txt2img pixel limit the base render must respect.</param>
    public static IReadOnlyList<ValidationError> Validate(HiresSpec spec, HiresLimits? limits = null, long txt2imgMaxPixels = ValidationLimits.DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(spec);
        limits ??= HiresLimits.Default;
        var c = CultureInfo.InvariantCulture;
        var errors = new List<ValidationError>();

        var widthOk = Dimension(errors, "width", spec.Width, limits.MaxSide);
        var heightOk = Dimension(errors, "height", spec.Height, limits.MaxSide);
        var sizeOk = widthOk && heightOk;
        if (sizeOk && (long)spec.Width * spec.Height > limits.MaxPixels)
        {
            errors.Add(new("width", string.Create(c,
                $"width × height is {spec.Width}×{spec.Height} = {(long)spec.Width * spec.Height} pixels, over the hires limit of {limits.MaxPixels}; reduce width or height.")));
            sizeOk = false;
        }

        if (spec.ModelSide is < HiresLimits.MinTile or > HiresLimits.MaxTile || spec.ModelSide % TileGrid.Alignment != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(spec), spec.ModelSide,
                $"The model side must be a multiple of {TileGrid.Alignment} between {HiresLimits.MinTile} and {HiresLimits.MaxTile}.");
        }

        var tile = spec.Tile ?? DefaultTile(spec.ModelSide);
        var tileOk = true;
        if (tile is < HiresLimits.MinTile or > HiresLimits.MaxTile || tile % TileGrid.Alignment != 0)
        {
            errors.Add(new("tile", string.Create(c,
                $"tile is {tile}; use a multiple of {TileGrid.Alignment} between {HiresLimits.MinTile} and {HiresLimits.MaxTile} (the model's native side, {DefaultTile(spec.ModelSide)} here, suits it best).")));
            tileOk = false;
        }

        var overlap = spec.Overlap ?? DefaultOverlap(spec.ModelSide, tile);
        var overlapOk = true;
        if (overlap < 0 || overlap % TileGrid.Alignment != 0 || (tileOk && overlap > tile / 2))
        {
            errors.Add(new("overlap", string.Create(c,
                $"overlap is {overlap}; use a multiple of {TileGrid.Alignment} between 0 and half the tile ({(tileOk ? tile / 2 : HiresLimits.MaxTile / 2)}); {DefaultOverlap(spec.ModelSide, HiresLimits.MaxTile)} hides seams.")));
            overlapOk = false;
        }

        if (spec.Strength is { } strength && !(double.IsFinite(strength) && strength > 0 && strength <= 1))
        {
            errors.Add(new("strength", string.Create(c,
                $"strength is {strength}; use a value greater than 0 and at most 1 (0.2–0.4 adds detail and keeps the base image's composition).")));
        }

        if ((spec.BaseWidth is null) != (spec.BaseHeight is null))
        {
            errors.Add(new(spec.BaseWidth is null ? "baseWidth" : "baseHeight",
                "baseWidth and baseHeight go together; give both, or neither for the model's native size at the target's aspect ratio."));
        }
        else if (spec.BaseWidth is { } baseWidth && spec.BaseHeight is { } baseHeight)
        {
            var baseOk = Dimension(errors, "baseWidth", baseWidth, limits.MaxSide) & Dimension(errors, "baseHeight", baseHeight, limits.MaxSide);
            if (baseOk && sizeOk && (baseWidth > spec.Width || baseHeight > spec.Height))
            {
                errors.Add(new(baseWidth > spec.Width ? "baseWidth" : "baseHeight", string.Create(c,
                    $"the base render {baseWidth}×{baseHeight} is larger than the target {spec.Width}×{spec.Height}; hires only upscales, so use a smaller base (or leave it out).")));
            }
            else if (baseOk && (long)baseWidth * baseHeight > txt2imgMaxPixels)
            {
                errors.Add(new("baseWidth", string.Create(c,
                    $"the base render {baseWidth}×{baseHeight} is over the txt2img limit of {txt2imgMaxPixels} pixels; use a base near the model's native size (e.g. {spec.ModelSide}×{spec.ModelSide}).")));
            }
        }

        if (sizeOk && tileOk && overlapOk)
        {
            var tiles = TileGrid.CountTiles(spec.Width, spec.Height, tile, overlap);
            if (tiles > limits.MaxTiles)
            {
                errors.Add(new("tile", string.Create(c,
                    $"tile {tile} with overlap {overlap} cuts {spec.Width}×{spec.Height} into {tiles} tiles, over the limit of {limits.MaxTiles}; use larger tiles or a smaller overlap.")));
            }
        }

        return errors;
    }

    /// <summary>Fills in the defaults of a spec that <see cref="Validate"/> accepted.</summary>
    /// <exception cref="ArgumentException">The spec is invalid; the message lists the errors.</exception>
    public static ResolvedHires Resolve(HiresSpec spec, HiresLimits? limits = null, long txt2imgMaxPixels = ValidationLimits.DefaultMaxPixels)
    {
        var errors = Validate(spec, limits, txt2imgMaxPixels);
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid hires request: " + string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")), nameof(spec));
        }

        var tile = spec.Tile ?? DefaultTile(spec.ModelSide);
        var overlap = spec.Overlap ?? DefaultOverlap(spec.ModelSide, tile);
        var (baseWidth, baseHeight) = spec.BaseWidth is { } w && spec.BaseHeight is { } h ? (w, h) : DefaultBaseSize(spec.Width, spec.Height, spec.ModelSide);
        return new ResolvedHires(spec.Width, spec.Height, tile, overlap, spec.Strength ?? HiresLimits.DefaultStrength, baseWidth, baseHeight);
    }

    /// <summary>
    /// The tile a model renders best: its native side, one UNet window at the scale it was trained on (512 for SD 1.x,
    /// 768 for SD 2.x 768-v, 1024 for SDXL).
    /// </summary>
    public static int DefaultTile(int modelSide) => modelSide;

    /// <summary>
    /// An eighth of the model's side (64 px, 8 latent cells, for SD 1.x; 96 for 768², 128 for 1024²), so the cosine
    /// cross-fade covers the same share of a native tile (~27% extra work) whatever the model; never over half the tile.
    /// </summary>
    public static int DefaultOverlap(int modelSide, int tile) =>
        Math.Min(modelSide / 8 / TileGrid.Alignment * TileGrid.Alignment, tile / 2 / TileGrid.Alignment * TileGrid.Alignment);

    /// <summary>
    /// The base render for a target: about <paramref name="modelSide"/>² pixels (the model's native area) at the
    /// target's aspect ratio, sides rounded to multiples of 8, at least 64 and never larger than the target.
    /// </summary>
    public static (int Width, int Height) DefaultBaseSize(int width, int height, int modelSide = HiresLimits.DefaultModelSide)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(modelSide);
        var aspect = (double)width / height;
        var area = (double)modelSide * modelSide;
        return (Side(Math.Sqrt(area * aspect), width), Side(Math.Sqrt(area / aspect), height));

        static int Side(double ideal, int target)
        {
            var rounded = (int)Math.Round(ideal / TileGrid.Alignment) * TileGrid.Alignment;
            return Math.Min(Math.Max(rounded, ValidationLimits.MinDimension), target);
        }
    }

    private static bool Dimension(List<ValidationError> errors, string field, int value, int maxSide)
    {
        var c = CultureInfo.InvariantCulture;
        if (value < ValidationLimits.MinDimension || value > maxSide)
        {
            errors.Add(new(field, string.Create(c, $"{field} is {value}; use between {ValidationLimits.MinDimension} and {maxSide} pixels.")));
            return false;
        }

        if (value % ValidationLimits.DimensionMultiple != 0)
        {
            var down = value / ValidationLimits.DimensionMultiple * ValidationLimits.DimensionMultiple;
            errors.Add(new(field, string.Create(c,
                $"{field} is {value}, not a multiple of {ValidationLimits.DimensionMultiple}; use {down} or {down + ValidationLimits.DimensionMultiple}.")));
            return false;
        }

        return true;
    }
}
