using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Worker.Rendering;

/// <summary>
/// Renders nothing: every item gets the same 1×1 PNG at once. For the coordinator throughput bench, which measures
/// what the farm itself costs per item (dispatch, messages, storage, bookkeeping) without the engine.
/// </summary>
public sealed class NullItemRenderer : IItemRenderer
{
    public const string ParametersText = "null renderer";

    // Encoded once: the bench must measure the farm, not Skia.
    private static readonly Lazy<byte[]> Pixel = new(() => PngCodec.Encode(new RgbImage(1, 1, [0, 0, 0]), ParametersText));

    public IReadOnlyCollection<string> LoadedModels => [];

    public Task WarmUpAsync(string model, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyList<RenderedImage>> RenderAsync(RenderBatch batch, IProgress<RenderStep>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var steps = batch.First.Steps;
        progress?.Report(new RenderStep(steps, steps));
        IReadOnlyList<RenderedImage> images = batch.Items.Select(i => new RenderedImage(i.ItemId, Pixel.Value)).ToList();
        return Task.FromResult(images);
    }

    public void Dispose()
    {
    }
}
