using RenderFarm.Contracts;
using RenderFarm.Diffusion.Models;
using RenderFarm.Worker.Consumers;
using RenderFarm.Worker.Models;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Worker.Tests;

public sealed class RenderBatchTests
{
    [Fact]
    public void Plan_groups_items_with_equal_settings_in_order_of_first_appearance_and_caps_batch_size()
    {
        var a1 = TestItems.Item(seed: 1);
        var b1 = TestItems.Item(seed: 2) with { Steps = 3 };
        var a2 = TestItems.Item(seed: 3);
        var a3 = TestItems.Item(seed: 4);

        var plan = RenderBatch.Plan([a1, b1, a2, a3], maxBatchSize: 2);

        plan.Select(b => b.Select(i => i.Seed).ToArray()).ShouldBe([[1L, 3L], [4L], [2L]]);
    }

    [Fact]
    public void Plan_with_batch_size_one_renders_one_by_one()
    {
        var items = Enumerable.Range(0, 3).Select(i => TestItems.Item(seed: i)).ToList();

        RenderBatch.Plan(items, maxBatchSize: 1).Select(b => b.Count).ShouldBe([1, 1, 1]);
    }

    [Theory]
    [InlineData(typeof(ModelNotFoundException), false)]
    [InlineData(typeof(ModelFormatException), false)]
    [InlineData(typeof(ArgumentException), false)]
    [InlineData(typeof(ArgumentOutOfRangeException), false)]
    [InlineData(typeof(OutOfMemoryException), true)]
    [InlineData(typeof(IOException), true)]
    [InlineData(typeof(InvalidOperationException), true)]
    public void Bad_input_and_models_fail_for_good_and_other_faults_are_retryable(Type exceptionType, bool retryable)
    {
        var exception = (Exception)Activator.CreateInstance(exceptionType, "boom")!;

        var (reason, isRetryable) = RenderWorkUnitConsumer.Classify(exception);

        isRetryable.ShouldBe(retryable);
        reason.ShouldNotBeNullOrWhiteSpace();
    }

    [Fact]
    public void Unknown_mode_is_bad_input()
    {
        var batch = new RenderBatch([TestItems.Item(seed: 1) with { Mode = "outpaint" }]);

        Should.Throw<ArgumentException>(() => EngineItemRenderer.ToRequest(batch)).Message.ShouldContain("outpaint");
    }

    [Fact]
    public void Img2img_without_its_init_image_is_bad_input()
    {
        var batch = new RenderBatch([TestItems.Item(seed: 1) with { Mode = RenderModes.Img2Img, Strength = 0.5, InitImageKey = "in.png" }]);

        Should.Throw<ArgumentException>(() => EngineItemRenderer.ToRequest(batch));
    }

    [Theory]
    [InlineData("tiny-sd", true)]
    [InlineData("sd-1.5", true)]
    [InlineData("../etc", false)]
    [InlineData("a/b", false)]
    [InlineData("..", false)]
    [InlineData("", false)]
    public void Model_names_are_single_folder_names(string name, bool valid) =>
        ModelCatalog.IsValidName(name).ShouldBe(valid);
}
