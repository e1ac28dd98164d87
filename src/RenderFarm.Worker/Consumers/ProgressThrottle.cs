namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Decides which denoising steps become progress events: the first and the last always, others only once
/// <paramref name="minInterval"/> has passed since the previous event. A thousand-step render at a few
/// milliseconds a step would otherwise flood the coordinator.
/// </summary>
internal sealed class ProgressThrottle(TimeSpan minInterval, TimeProvider time)
{
    private long _last;
    private bool _any;

    public bool ShouldSend(int step, int totalSteps)
    {
        var now = time.GetTimestamp();
        if (_any && step != 1 && step < totalSteps && time.GetElapsedTime(_last, now) < minInterval)
        {
            return false;
        }

        _any = true;
        _last = now;
        return true;
    }
}
