using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Upscaling;

namespace RenderFarm.Diffusion.Hires;

/// <summary>
/// How hires turns its base render into the img2img input of one tile: the pixels of one region of the base upscaled
/// to the target size, computed from the base pixels under the region only (no process builds the whole upscale).
/// </summary>
public interface IBaseUpscaler
{
    /// <summary>The name images record in their parameters (<c>Hires upscaler</c>); null for the default resampling.</summary>
    string? Name { get; }

    /// <summary>The pixels of <paramref name="region"/> of <paramref name="baseImage"/> upscaled to <paramref name="targetWidth"/>×<paramref name="targetHeight"/>.</summary>
    RgbImage UpscaleRegion(RgbImage baseImage, int targetWidth, int targetHeight, PixelRect region, CancellationToken cancellationToken);
}

/// <summary>The default: Mitchell resampling (<see cref="RegionUpscaler"/>).</summary>
public sealed class ResamplingBaseUpscaler : IBaseUpscaler
{
    public static ResamplingBaseUpscaler Instance { get; } = new();

    public string? Name => null;

    public RgbImage UpscaleRegion(RgbImage baseImage, int targetWidth, int targetHeight, PixelRect region, CancellationToken cancellationToken) =>
        RegionUpscaler.Upscale(baseImage, targetWidth, targetHeight, region);
}

/// <summary>
/// A super-resolution model as hires' upscaler, as AUTOMATIC1111's hires fix uses one: the model runs once (×s) over
/// the base pixels under the region plus a margin of context, tiled under the memory budget; where s times the base
/// size is not the target size, the model's output is then resampled to it with Mitchell's filter (from the window
/// the region's kernels read). When the base times s is the target, a region's pixels are the model's own.
/// </summary>
/// <remarks>
/// The margin (<see cref="ContextMargin"/> base pixels) gives the model context across the region's edges; a model whose
/// receptive field is wider than the margin can give two neighbouring tiles slightly different pixels where they
/// overlap, which the tiles' blend hides. The tile size is the planner's choice on each machine.
/// </remarks>
public sealed class ModelBaseUpscaler(Upscaler upscaler, TileSize? tile = null) : IBaseUpscaler
{
    public string? Name => upscaler.Name;

    /// <summary>Base pixels of context around the region on each side (Real-ESRGAN's own tiles pad by 10).</summary>
    public const int ContextMargin = 16;

    public Upscaler Upscaler => upscaler;

    public RgbImage UpscaleRegion(RgbImage baseImage, int targetWidth, int targetHeight, PixelRect region, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(baseImage);
        var s = upscaler.Scale;
        int upWidth = baseImage.Width * s, upHeight = baseImage.Height * s;
        var direct = upWidth == targetWidth && upHeight == targetHeight;
        // The pixels of the model's output that the region needs: the region itself, or its resampling footprint.
        var needed = direct ? region : RegionUpscaler.SourceFootprint(upWidth, upHeight, targetWidth, targetHeight, region);

        // The base pixels under them, widened by the margin and clamped to the base.
        var bx0 = Math.Max(0, needed.X / s - ContextMargin);
        var by0 = Math.Max(0, needed.Y / s - ContextMargin);
        var bx1 = Math.Min(baseImage.Width, (needed.Right + s - 1) / s + ContextMargin);
        var by1 = Math.Min(baseImage.Height, (needed.Bottom + s - 1) / s + ContextMargin);
        var crop = Crop(baseImage, new PixelRect(bx0, by0, bx1 - bx0, by1 - by0));
        var window = upscaler.Upscale(crop, tile, cancellationToken);
        if (direct)
        {
            return Crop(window, new PixelRect(region.X - bx0 * s, region.Y - by0 * s, region.Width, region.Height));
        }

        return RegionUpscaler.Upscale(window, bx0 * s, by0 * s, upWidth, upHeight, targetWidth, targetHeight, region);
    }

    private static RgbImage Crop(RgbImage image, PixelRect rect)
    {
        var pixels = new byte[rect.Width * rect.Height * 3];
        for (var y = 0; y < rect.Height; y++)
        {
            Array.Copy(image.Pixels, ((rect.Y + y) * image.Width + rect.X) * 3, pixels, y * rect.Width * 3, rect.Width * 3);
        }

        return new RgbImage(rect.Width, rect.Height, pixels);
    }
}
