using RenderFarm.Contracts;

namespace RenderFarm.Worker.Tests;

internal static class TestItems
{
    public const string Model = WorkerOptions.TinyModelName;

    public static RenderItem Item(long seed, int steps = 2, string model = Model, string? outputKey = null)
    {
        var id = Guid.NewGuid();
        return new RenderItem(
            ItemId: id,
            Attempt: 1,
            Index: seed,
            Seed: seed,
            Prompt: "a lighthouse at dusk",
            NegativePrompt: "",
            Width: 64,
            Height: 64,
            Steps: steps,
            GuidanceScale: 7.5,
            Sampler: "euler_a",
            Model: model,
            Mode: RenderModes.Txt2Img,
            Strength: null,
            InitImageKey: null,
            MaskKey: null,
            OutputKey: outputKey ?? $"tests/{id:N}.png");
    }

    public static RenderWorkUnit Unit(params RenderItem[] items) => new(Guid.NewGuid(), Guid.NewGuid(), items);

    public static RenderWorkUnit Unit(Guid jobId, params RenderItem[] items) => new(Guid.NewGuid(), jobId, items);
}
