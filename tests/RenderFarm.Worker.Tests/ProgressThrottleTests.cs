using RenderFarm.Worker.Consumers;

namespace RenderFarm.Worker.Tests;

public sealed class ProgressThrottleTests
{
    [Fact]
    public void Sends_first_and_last_step_and_at_most_the_rate_in_between()
    {
        var time = new ManualTime();
        var throttle = new ProgressThrottle(TimeSpan.FromMilliseconds(500), time);
        var sent = new List<int>();

        // 100 steps of 100 ms: 10 s at 2 events/s allows about 20 plus the last.
        for (var step = 1; step <= 100; step++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            if (throttle.ShouldSend(step, 100))
            {
                sent.Add(step);
            }
        }

        sent[0].ShouldBe(1);
        sent[^1].ShouldBe(100);
        sent.Count.ShouldBeInRange(20, 22);
        sent.Zip(sent.Skip(1)).Take(sent.Count - 2).ShouldAllBe(p => p.Second - p.First >= 5);
    }

    [Fact]
    public void Fast_renders_send_only_first_and_last()
    {
        var time = new ManualTime();
        var throttle = new ProgressThrottle(TimeSpan.FromMilliseconds(500), time);

        var sent = Enumerable.Range(1, 30).Where(step => throttle.ShouldSend(step, 30)).ToList();

        sent.ShouldBe([1, 30]);
    }
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualTime : TimeProvider
{
    private long _ticks;
    private DateTimeOffset _now = new(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => _ticks;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by)
    {
        _ticks += by.Ticks;
        _now += by;
    }
}
