using RenderFarm.Contracts;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Worker.Tests;

/// <summary>The farm-wide watermark (<c>Worker:Watermark</c>): validated at start, passed to the engine for the images it may mark.</summary>
public sealed class WatermarkOptionTests
{
    private static readonly byte[] Payload = "StableDiffusionV1"u8.ToArray();

    private static RenderItem Item(int size) => TestItems.Item(seed: 1) with { Width = size, Height = size };

    [Fact]
    public void The_payload_reaches_the_engine_for_an_image_large_enough_to_carry_it()
    {
        var request = EngineItemRenderer.ToRequest(new RenderBatch([Item(256)]), Payload);

        request.Watermark.ShouldBe(Payload);
    }

    [Fact]
    public void Without_a_farm_watermark_nothing_is_asked()
    {
        EngineItemRenderer.ToRequest(new RenderBatch([Item(256)])).Watermark.ShouldBeNull();
    }

    [Fact]
    public void An_image_under_256x256_is_rendered_unmarked_rather_than_failed()
    {
        EngineItemRenderer.ToRequest(new RenderBatch([Item(128)]), Payload).Watermark.ShouldBeNull();
    }

    [Fact]
    public void A_hires_base_is_not_marked()
    {
        var item = Item(256) with { Hires = new HiresPart(HiresRoles.Base, 1024, 1024, 512, 64, -1, 9, null, null) };

        EngineItemRenderer.ToRequest(new RenderBatch([item]), Payload).Watermark.ShouldBeNull();
    }

    [Theory]
    [InlineData("")]
    [InlineData("a payload that is longer than thirty-two bytes")]
    public void A_payload_that_cannot_be_embedded_fails_validation(string watermark)
    {
        var result = new WorkerOptionsValidator().Validate(null, new WorkerOptions { Watermark = watermark });

        result.Failed.ShouldBeTrue();
        result.FailureMessage.ShouldContain("Worker:Watermark");
    }

    [Fact]
    public void A_valid_payload_passes_validation()
    {
        var result = new WorkerOptionsValidator().Validate(null, new WorkerOptions { Watermark = "StableDiffusionV1" });

        (result.FailureMessage ?? "").ShouldNotContain("Watermark");
    }
}
