using RenderFarm.Coordinator.Dispatch;
using RenderFarm.Coordinator.Options;

namespace RenderFarm.Coordinator.Tests;

/// <summary>The dispatch order alone: priority first, then fair share among jobs of one priority, rows in order within a job.</summary>
public sealed class DispatchOrderTests
{
    private static readonly DateTime T0 = new(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);
    private static readonly Guid Sweep = Guid.Parse("00000000-0000-0000-0000-00000000000a");
    private static readonly Guid Small = Guid.Parse("00000000-0000-0000-0000-00000000000b");
    private static readonly Guid Urgent = Guid.Parse("00000000-0000-0000-0000-00000000000c");

    private static DispatchOrder Order(FairSharePolicy policy) => new(policy, new JobFairShareKey());

    private static List<DispatchCandidate> Rows(Guid job, int priority, DateTime created, long firstRow, int count, int items = 8) =>
        [.. Enumerable.Range(0, count).Select(i => new DispatchCandidate(firstRow + i, job, priority, created, items))];

    [Theory]
    [InlineData(FairSharePolicy.LeastInFlight)]
    [InlineData(FairSharePolicy.Submission)]
    public void A_higher_priority_job_goes_first_whatever_its_age_and_the_policy(FairSharePolicy policy)
    {
        var candidates = Rows(Sweep, 0, T0, 1, 3).Concat(Rows(Urgent, 10, T0.AddMinutes(5), 100, 2)).ToList();

        var order = Order(policy).Order(candidates, new Dictionary<Guid, long>());

        order.Select(c => c.JobId).ShouldBe([Urgent, Urgent, Sweep, Sweep, Sweep]);
        order.Where(c => c.JobId == Sweep).Select(c => c.RowId).ShouldBe([1, 2, 3]);
    }

    [Fact]
    public void Least_in_flight_alternates_between_jobs_of_one_priority_starting_with_the_one_that_has_less_running()
    {
        var candidates = Rows(Sweep, 0, T0, 1, 3).Concat(Rows(Small, 0, T0.AddMinutes(1), 50, 3)).ToList();

        var order = Order(FairSharePolicy.LeastInFlight).Order(candidates, new Dictionary<Guid, long> { [Sweep] = 16 });

        order.Select(c => c.RowId).ShouldBe([50, 51, 1, 52, 2, 3]);
    }

    [Fact]
    public void Least_in_flight_breaks_a_tie_for_the_older_job()
    {
        var candidates = Rows(Small, 0, T0.AddMinutes(1), 50, 2).Concat(Rows(Sweep, 0, T0, 1, 2)).ToList();

        var order = Order(FairSharePolicy.LeastInFlight).Order(candidates, new Dictionary<Guid, long>());

        order.Select(c => c.RowId).ShouldBe([1, 50, 2, 51]);
    }

    [Fact]
    public void Submission_order_serves_the_older_job_whole_first()
    {
        var candidates = Rows(Small, 0, T0.AddMinutes(1), 50, 2).Concat(Rows(Sweep, 0, T0, 1, 2)).ToList();

        var order = Order(FairSharePolicy.Submission).Order(candidates, new Dictionary<Guid, long> { [Sweep] = 100 });

        order.Select(c => c.RowId).ShouldBe([1, 2, 50, 51]);
    }

    [Fact]
    public void The_unit_of_fairness_is_the_key_so_jobs_sharing_a_key_share_one_turn()
    {
        var third = Guid.Parse("00000000-0000-0000-0000-00000000000d");
        var candidates = Rows(Sweep, 0, T0, 1, 2).Concat(Rows(Small, 0, T0.AddMinutes(1), 50, 2)).Concat(Rows(third, 0, T0.AddMinutes(2), 90, 2)).ToList();
        var order = new DispatchOrder(FairSharePolicy.LeastInFlight, new FirstTwoShareKey(Sweep, Small));

        var sequence = order.Order(candidates, new Dictionary<Guid, long>()).Select(c => c.RowId).ToList();

        // "team" (sweep and small) and the third job alternate; within the team, the older job's rows first.
        sequence.ShouldBe([1, 90, 2, 91, 50, 51]);
    }

    [Fact]
    public void The_window_and_the_policy_are_validated_at_start()
    {
        var validator = new BackgroundOptionsValidator();

        validator.Validate(null, new OutboxDispatcherOptions()).Succeeded.ShouldBeTrue();
        var bad = validator.Validate(null, new OutboxDispatcherOptions { UnitsPerWorker = 0, FairShare = (FairSharePolicy)7 });

        bad.Failed.ShouldBeTrue();
        bad.FailureMessage.ShouldContain("Coordinator:Dispatcher:UnitsPerWorker must be between 1 and 100000.");
        bad.FailureMessage.ShouldContain("Coordinator:Dispatcher:FairShare must be one of LeastInFlight, Submission.");
    }

    private sealed class FirstTwoShareKey(Guid a, Guid b) : IFairShareKey
    {
        public string KeyOf(DispatchCandidate candidate) => candidate.JobId == a || candidate.JobId == b ? "team" : candidate.JobId.ToString("N");
    }
}
