using RenderFarm.Domain.Policies;
using RenderFarm.Domain.States;

namespace RenderFarm.Domain.Tests.Policies;

public class RetryPolicyTests
{
    [Theory]
    [InlineData(1, 5)]
    [InlineData(2, 10)]
    [InlineData(3, 20)]
    [InlineData(4, 40)]
    [InlineData(7, 300)]
    [InlineData(8, 300)]
    [InlineData(int.MaxValue, 300)]
    public void Default_backoff_doubles_from_5s_up_to_5_minutes(int failedAttempt, int seconds) =>
        RetryPolicy.Default.BackoffAfter(failedAttempt).ShouldBe(TimeSpan.FromSeconds(seconds));

    [Fact]
    public void Backoff_follows_configured_values()
    {
        var policy = new RetryPolicy { InitialBackoff = TimeSpan.FromSeconds(1), Multiplier = 3, MaxBackoff = TimeSpan.FromSeconds(20) };
        Enumerable.Range(1, 5).Select(policy.BackoffAfter).ShouldBe(
            [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(9), TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(20)]);
    }

    [Fact]
    public void Attempt_numbers_start_at_1() =>
        Should.Throw<ArgumentOutOfRangeException>(() => RetryPolicy.Default.BackoffAfter(0));

    [Theory]
    [InlineData(1, true, true)]
    [InlineData(2, true, true)]
    [InlineData(3, true, false)]
    [InlineData(1, false, false)]
    public void Retries_retryable_failures_until_attempts_run_out(int failedAttempt, bool retryable, bool expected)
    {
        RetryPolicy.Default.ShouldRetry(failedAttempt, retryable).ShouldBe(expected);
        RetryPolicy.Default.StateAfterFailure(failedAttempt, retryable).ShouldBe(expected ? ItemState.Retrying : ItemState.Failed);
    }

    [Fact]
    public void Retry_time_is_failure_time_plus_backoff()
    {
        var failedAt = new DateTimeOffset(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);
        RetryPolicy.Default.RetryAt(2, failedAt).ShouldBe(failedAt.AddSeconds(10));
    }

    [Fact]
    public void Defaults_are_valid_and_bad_settings_are_named()
    {
        RetryPolicy.Default.Validate().ShouldBeEmpty();
        var errors = new RetryPolicy { MaxAttempts = 0, Multiplier = 0.5, InitialBackoff = TimeSpan.FromMinutes(10) }.Validate();
        errors.Count.ShouldBe(3);
        errors.ShouldContain(e => e.Contains("MaxAttempts"));
        errors.ShouldContain(e => e.Contains("Multiplier"));
        errors.ShouldContain(e => e.Contains("MaxBackoff"));
    }
}
