using System.Collections.Concurrent;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Worker.Rendering;

/// <summary>
/// Renders nothing: every item gets the same 1×1 PNG at once (a hires tile a black PNG of its size). For the
/// coordinator throughput bench, which measures what the farm itself costs per item (dispatch, messages, storage,
/// bookkeeping) without the engine.
/// </summary>
public sealed class NullItemRenderer : IItemRenderer
{
    public const string ParametersText = "null renderer";

    // Encoded once: the bench must measure the farm, not Skia.
    private static readonly Lazy<byte[]> Pixel = new(() => PngCodec.Encode(new RgbImage(1, 1, [0, 0, 0]), ParametersText));

    // One black PNG per tile size (a job has one or two), encoded once for the same reason.
    private static readonly ConcurrentDictionary<(int Width, int Height), byte[]> TilePngs = new();

    public IReadOnlyCollection<string> LoadedModels => [];

    public Task WarmUpAsync(string model, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyList<RenderedImage>> RenderAsync(RenderBatch batch, IProgress<RenderStep>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        if (batch.First.Mode == RenderModes.HiresStitch)
        {
            throw new ArgumentException("A hires-stitch item blends stored tiles; the consumer streams it to the store without a renderer.", nameof(batch));
        }

        var steps = batch.First.Steps;
        progress?.Report(new RenderStep(steps, steps));
        IReadOnlyList<RenderedImage> images = batch.Items.Select(i => new RenderedImage(i.ItemId, PngFor(i))).ToList();
        return Task.FromResult(images);
    }

    /// <summary>
    /// A hires tile must be its tile's size, or the stitch that blends it refuses it; every other item gets the pixel.
    /// </summary>
    private static byte[] PngFor(RenderItem item) =>
        item.Mode == RenderModes.HiresTile
            ? TilePngs.GetOrAdd((item.Width, item.Height), size => PngCodec.Encode(new RgbImage(size.Width, size.Height, new byte[size.Width * size.Height * 3]), ParametersText))
            : Pixel.Value;

    public void Dispose()
    {
    }
}
