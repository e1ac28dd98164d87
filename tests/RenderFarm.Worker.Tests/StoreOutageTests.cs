using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Polly.Timeout;
using RenderFarm.Storage;
using RenderFarm.Worker.Outages;

namespace RenderFarm.Worker.Tests;

/// <summary>
/// The policy that keeps a store outage from spending item attempts. The outage itself, against the real Swift killed
/// for 60 s with a job in flight, is <c>ServiceFaultTests</c> in the integration tests.
/// </summary>
public sealed class StoreOutageTests
{
    [Fact]
    public async Task Calls_failing_because_the_store_is_unreachable_are_retried_until_they_pass()
    {
        var outage = Create(TimeSpan.FromMinutes(1));
        var calls = 0;
        var result = await outage.ExecuteAsync(_ =>
        {
            calls++;
            return calls < 3
                ? throw new ArtifactStoreException("connection refused", new HttpRequestException("refused")) { Unreachable = true }
                : ValueTask.FromResult(42);
        }, CancellationToken.None);

        result.ShouldBe(42);
        calls.ShouldBe(3);
        outage.UnreachableSince.ShouldBeNull("the store answered again");
    }

    [Fact]
    public async Task The_items_own_faults_pass_through_at_once()
    {
        var outage = Create(TimeSpan.FromMinutes(1));
        var calls = 0;
        await Should.ThrowAsync<ArtifactNotFoundException>(async () => await outage.ExecuteAsync<int>(_ =>
        {
            calls++;
            throw new ArtifactNotFoundException("no such key");
        }, CancellationToken.None));
        calls.ShouldBe(1);
    }

    [Fact]
    public async Task An_outage_longer_than_the_deadline_ends_the_wait()
    {
        var outage = Create(TimeSpan.FromSeconds(2));
        var calls = 0;
        await Should.ThrowAsync<TimeoutRejectedException>(async () => await outage.ExecuteAsync<int>(_ =>
        {
            calls++;
            throw new ArtifactStoreException("503") { Unreachable = true };
        }, CancellationToken.None));
        calls.ShouldBeGreaterThan(1);
        outage.UnreachableSince.ShouldNotBeNull("the outage is not over");
    }

    [Fact]
    public void Only_unreachable_stores_and_timeouts_of_their_own_are_outages()
    {
        using var canceled = new CancellationTokenSource();
        canceled.Cancel();
        StoreOutage.IsUnreachable(new ArtifactStoreException("refused") { Unreachable = true }, CancellationToken.None).ShouldBeTrue();
        StoreOutage.IsUnreachable(new ArtifactStoreException("bad request"), CancellationToken.None).ShouldBeFalse();
        StoreOutage.IsUnreachable(new ArtifactStoreAccessDeniedException("wrong secret") { Unreachable = true }, CancellationToken.None).ShouldBeFalse();
        StoreOutage.IsUnreachable(new ArtifactNotFoundException("missing"), CancellationToken.None).ShouldBeFalse();
        StoreOutage.IsUnreachable(new HttpRequestException("reset"), CancellationToken.None).ShouldBeTrue();
        StoreOutage.IsUnreachable(new TaskCanceledException("HttpClient.Timeout"), CancellationToken.None).ShouldBeTrue();
        StoreOutage.IsUnreachable(new OperationCanceledException(canceled.Token), canceled.Token).ShouldBeFalse("the caller's own cancellation is not an outage");
        StoreOutage.IsUnreachable(new ArgumentException("bad key"), CancellationToken.None).ShouldBeFalse();
    }

    private static StoreOutage Create(TimeSpan deadline) =>
        new(Options.Create(new WorkerOptions { StoreOutageDeadline = deadline }), TimeProvider.System, NullLogger<StoreOutage>.Instance);
}
