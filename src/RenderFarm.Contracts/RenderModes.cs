namespace RenderFarm.Contracts;

/// <summary>
/// The generation modes as they appear in JSON and on the bus. Strings rather than an enum so the wire
/// never depends on a serializer's enum setting.
/// </summary>
public static class RenderModes
{
    /// <summary>Text to image: start from pure noise.</summary>
    public const string Txt2Img = "txt2img";

    /// <summary>Image to image: start from a noised init image; strength says how much of it is replaced.</summary>
    public const string Img2Img = "img2img";

    /// <summary>Inpainting: like img2img, but only the white area of the mask is repainted.</summary>
    public const string Inpaint = "inpaint";

    /// <summary>
    /// A large image: a base render, upscaled, refined tile by tile on any number of workers, and stitched. A job
    /// mode only; its items carry <see cref="HiresTile"/> and <see cref="HiresStitch"/> (and txt2img for the base).
    /// </summary>
    public const string Hires = "hires";

    /// <summary>
    /// Super-resolution of a client's image by a named upscaler model, with no diffusion: a hires job whose base is the
    /// image and whose tiles are only upscaled (their strength is 0), spread over the workers and stitched like hires.
    /// </summary>
    public const string Upscale = "upscale";

    /// <summary>Item mode of a hires tile: img2img of the tile's region of the upscaled base (see <see cref="HiresPart"/>).</summary>
    public const string HiresTile = "hires-tile";

    /// <summary>Item mode of a hires stitch: the tiles blended into the final image (see <see cref="HiresPart"/>).</summary>
    public const string HiresStitch = "hires-stitch";

    /// <summary>Modes a client may ask for.</summary>
    public static IReadOnlyList<string> All { get; } = [Txt2Img, Img2Img, Inpaint, Hires, Upscale];

    /// <summary>Whether a job of <paramref name="mode"/> runs as a hires job (base, tiles, stitch): hires and upscale.</summary>
    public static bool IsTiled(string? mode) => mode is Hires or Upscale;

    /// <summary>
    /// Whether <paramref name="item"/> is a tile or the stitch of an upscale job: strength 0, which no refinement has
    /// (its strength is above 0), so the coordinator uses it to mean "upscale the region, no img2img". Such a tile runs
    /// the upscaler alone (no diffusion model, no UNet size to fit) and the stitch records only the enlargement.
    /// </summary>
    public static bool IsUpscaleOnly(RenderItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        return item.Mode is HiresTile or HiresStitch && item.Strength is 0;
    }
}
