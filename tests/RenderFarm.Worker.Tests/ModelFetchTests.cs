using RenderFarm.Contracts;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Storage;
using RenderFarm.Storage.Models;
using RenderFarm.Worker.Models;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// Models follow the work: a worker sent an item for a model it lacks fetches it from the store, verifies it and
/// renders; a damaged store copy fails the item as retryable and leaves nothing behind.
/// </summary>
public sealed class ModelFetchTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private readonly TempFolder _models = new();

    public void Dispose() => _models.Dispose();

    [Fact]
    public async Task An_item_for_a_model_only_in_the_store_is_fetched_verified_and_rendered()
    {
        await using var worker = await StartWorkerAsync();
        var name = $"tiny-copy-{Guid.NewGuid():N}"[..20];
        await new ModelRepository(worker.Store).PushAsync(name, Path.Combine(SharedModels.Root, WorkerOptions.TinyModelName), replace: false, progress: null, CancellationToken.None);
        var item = TestItems.Item(seed: 31, model: name);

        await worker.SendAsync(TestItems.Unit(item));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count + p.All<ItemFailed>().Count == 1, Patience, "the item's outcome");

        worker.Published.All<ItemFailed>().ShouldBeEmpty();
        await using (var png = await worker.Store.OpenReadAsync(item.OutputKey, CancellationToken.None))
        {
            using var bytes = new MemoryStream();
            await png.CopyToAsync(bytes);
            var image = PngCodec.Decode(bytes.ToArray());
            (image.Width, image.Height).ShouldBe((64, 64));
        }

        var folder = Path.Combine(_models.Path, name);
        File.Exists(Path.Combine(folder, "unet", "model.onnx")).ShouldBeTrue();
        File.Exists(Path.Combine(folder, ModelCache.MarkerFileName)).ShouldBeTrue("the cache marks what it fetched");
    }

    [Fact]
    public async Task An_item_whose_model_is_damaged_in_the_store_fails_as_retryable_and_leaves_no_partial_folder()
    {
        await using var worker = await StartWorkerAsync();
        var name = $"tiny-bad-{Guid.NewGuid():N}"[..20];
        var manifest = await new ModelRepository(worker.Store).PushAsync(name, Path.Combine(SharedModels.Root, WorkerOptions.TinyModelName), replace: false, progress: null, CancellationToken.None);
        var unet = manifest.Files.Single(f => f.Path == "unet/model.onnx");
        await worker.Store.PutAsync(ArtifactKeys.ModelFile(name, unet.Path), new MemoryStream(new byte[unet.Size]), "application/octet-stream", CancellationToken.None);
        var item = TestItems.Item(seed: 32, model: name);

        await worker.SendAsync(TestItems.Unit(item));
        await worker.Published.WaitUntilAsync(p => p.All<ItemRendered>().Count + p.All<ItemFailed>().Count == 1, Patience, "the item's outcome");

        var failed = worker.Published.All<ItemFailed>().ShouldHaveSingleItem();
        failed.Retryable.ShouldBeTrue();
        failed.Reason.ShouldContain("SHA-256");
        failed.Reason.ShouldContain("unet/model.onnx");
        Directory.Exists(Path.Combine(_models.Path, name)).ShouldBeFalse();
        Directory.EnumerateDirectories(Path.Combine(_models.Path, ModelCache.StagingFolderName)).ShouldBeEmpty();
    }

    private Task<WorkerHarness> StartWorkerAsync() => WorkerHarness.StartAsync(settings: new Dictionary<string, string?>
    {
        ["Worker:ModelsRoot"] = _models.Path,
        // Nothing to warm: the tiny model is not in this root, and generating it would only slow the test.
        ["Worker:WarmUp"] = "false",
    });
}
