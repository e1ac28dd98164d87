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

    public static IReadOnlyList<string> All { get; } = [Txt2Img, Img2Img, Inpaint];
}
