using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Worker.Rendering;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// Holds every render of the real engine at one denoising step until <see cref="Release"/> or until the render is
/// canceled. Tests that need an item still running when a heartbeat, a cancel or a drain arrives used to rely on
/// the tiny model being slow enough; on a busy machine a 1,000-step item sometimes finished before the event landed.
/// </summary>
internal sealed class RenderHold(int atStep)
{
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int AtStep { get; } = atStep;

    public void Release() => _released.TrySetResult();

    /// <summary>For <see cref="WorkerHarness.StartAsync"/>'s moreServices: every slot's engine renderer is held by this.</summary>
    public void Register(IServiceCollection services) =>
        services.AddTransient<IItemRenderer>(sp => new HeldRenderer(ActivatorUtilities.CreateInstance<EngineItemRenderer>(sp), this));

    internal void WaitAt(RenderStep step, CancellationToken cancellationToken)
    {
        if (step.Step != AtStep)
        {
            return;
        }

        try
        {
            _released.Task.Wait(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Canceled while held: the engine sees the same token before its next step and stops there.
        }
    }

    private sealed class HeldRenderer(IItemRenderer inner, RenderHold hold) : IItemRenderer
    {
        public IReadOnlyCollection<string> LoadedModels => inner.LoadedModels;

        public string? MemoryStrategy => inner.MemoryStrategy;

        public Task WarmUpAsync(string model, CancellationToken cancellationToken) => inner.WarmUpAsync(model, cancellationToken);

        public Task<IReadOnlyList<RenderedImage>> RenderAsync(RenderBatch batch, IProgress<RenderStep>? progress, CancellationToken cancellationToken) =>
            inner.RenderAsync(batch, new Holding(progress, hold, cancellationToken), cancellationToken);

        public void Dispose() => inner.Dispose();
    }

    private sealed class Holding(IProgress<RenderStep>? inner, RenderHold hold, CancellationToken cancellationToken) : IProgress<RenderStep>
    {
        public void Report(RenderStep value)
        {
            inner?.Report(value);
            hold.WaitAt(value, cancellationToken);
        }
    }
}
