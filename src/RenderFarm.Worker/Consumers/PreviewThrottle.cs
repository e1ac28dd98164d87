namespace RenderFarm.Worker.Consumers;

/// <summary>
/// Decides which denoising steps get a preview: the first step, then one once <paramref name="interval"/> has passed
/// since the previous preview, never the last step (the finished image follows at once, so a preview there would only
/// cost). Unlike <see cref="ProgressThrottle"/> nothing is forced through: previews are pictures, not counts.
/// </summary>
internal sealed class PreviewThrottle(TimeSpan interval, TimeProvider time)
{
    private long _last;
    private bool _any;

    public bool ShouldSend(int step, int totalSteps)
    {
        if (step >= totalSteps)
        {
            return false;
        }

        var now = time.GetTimestamp();
        if (_any && time.GetElapsedTime(_last, now) < interval)
        {
            return false;
        }

        _any = true;
        _last = now;
        return true;
    }
}
