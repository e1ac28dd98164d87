using RenderFarm.Worker.Cancellation;

namespace RenderFarm.Worker.Tests;

public sealed class JobCancellationsTests
{
    [Fact]
    public void Cancel_reaches_every_running_unit_of_the_job_and_only_that_job()
    {
        var cancellations = new JobCancellations(TimeProvider.System);
        var job = Guid.NewGuid();
        using var first = cancellations.Enter(job);
        using var second = cancellations.Enter(job);
        using var other = cancellations.Enter(Guid.NewGuid());

        cancellations.Cancel(job);

        first.Token.IsCancellationRequested.ShouldBeTrue();
        second.Token.IsCancellationRequested.ShouldBeTrue();
        other.Token.IsCancellationRequested.ShouldBeFalse();
    }

    [Fact]
    public void A_unit_entering_after_the_cancel_starts_canceled()
    {
        var cancellations = new JobCancellations(TimeProvider.System);
        var job = Guid.NewGuid();
        cancellations.Cancel(job);

        using var late = cancellations.Enter(job);

        cancellations.IsCanceled(job).ShouldBeTrue();
        late.Token.IsCancellationRequested.ShouldBeTrue();
    }

    [Fact]
    public void Units_dispatched_after_the_cancel_belong_to_a_retry_and_are_not_canceled()
    {
        var cancellations = new JobCancellations(TimeProvider.System);
        var job = Guid.NewGuid();
        var canceledAt = new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
        using var before = cancellations.Enter(job, canceledAt.AddSeconds(-1));
        using var retry = cancellations.Enter(job, canceledAt.AddSeconds(1));

        cancellations.Cancel(job, canceledAt);

        before.Token.IsCancellationRequested.ShouldBeTrue();
        retry.Token.IsCancellationRequested.ShouldBeFalse();
        cancellations.IsCanceled(job, canceledAt.AddSeconds(-1)).ShouldBeTrue();
        cancellations.IsCanceled(job, canceledAt).ShouldBeTrue();
        cancellations.IsCanceled(job, null).ShouldBeTrue();
        cancellations.IsCanceled(job, canceledAt.AddSeconds(1)).ShouldBeFalse();
        using var late = cancellations.Enter(job, canceledAt.AddSeconds(2));
        late.Token.IsCancellationRequested.ShouldBeFalse();
    }

    [Fact]
    public void Canceled_jobs_are_forgotten_after_the_retention()
    {
        var time = new ManualTime();
        var cancellations = new JobCancellations(time);
        var old = Guid.NewGuid();
        cancellations.Cancel(old);

        time.Advance(JobCancellations.Retention + TimeSpan.FromMinutes(1));
        cancellations.Cancel(Guid.NewGuid());

        cancellations.IsCanceled(old).ShouldBeFalse();
    }
}
