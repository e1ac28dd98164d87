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

        // "team" (sweep and small) and the third job alternate; within the team, its jobs take turns too.
        sequence.ShouldBe([1, 90, 50, 91, 2, 51]);
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

    [Fact]
    public void By_tenant_tenants_take_turns_however_many_jobs_each_has_and_a_tenants_jobs_take_turns_within_its_share()
    {
        Guid a1 = Guid.Parse("00000000-0000-0000-0000-0000000000a1"), a2 = Guid.Parse("00000000-0000-0000-0000-0000000000a2"),
            a3 = Guid.Parse("00000000-0000-0000-0000-0000000000a3"), b1 = Guid.Parse("00000000-0000-0000-0000-0000000000b1");
        List<DispatchCandidate> Of(Guid job, string tenant, DateTime created, long firstRow) =>
            [.. Rows(job, 0, created, firstRow, 3).Select(r => r with { Tenant = tenant })];
        var candidates = Of(a1, "a", T0, 10).Concat(Of(a2, "a", T0.AddMinutes(1), 20)).Concat(Of(a3, "a", T0.AddMinutes(2), 30))
            .Concat(Of(b1, "b", T0.AddMinutes(3), 40)).ToList();

        var byTenant = new DispatchOrder(FairSharePolicy.LeastInFlight, new TenantFairShareKey()).Order(candidates, new Dictionary<Guid, long>());
        var byJob = Order(FairSharePolicy.LeastInFlight).Order(candidates, new Dictionary<Guid, long>());

        // Tenant a (older) first, then b, alternating while both have work; within a, its three jobs in turn.
        byTenant.Take(6).Select(c => c.Tenant).ShouldBe(["a", "b", "a", "b", "a", "b"]);
        byTenant.Where(c => c.Tenant == "a").Select(c => c.RowId).ShouldBe([10, 20, 30, 11, 21, 31, 12, 22, 32]);
        // By job, b's one job is one share of four: its first unit waits behind a's three jobs.
        byJob.Take(4).Select(c => c.JobId).ShouldBe([a1, a2, a3, b1]);
        byTenant.Select(c => c.RowId).Order().ShouldBe(candidates.Select(c => c.RowId).Order());
    }

    [Fact]
    public void By_tenant_a_tenant_with_more_in_flight_waits_for_the_other()
    {
        var a = Rows(Sweep, 0, T0, 1, 2).Select(r => r with { Tenant = "a" });
        var b = Rows(Small, 0, T0.AddMinutes(1), 50, 2).Select(r => r with { Tenant = "b" });

        var order = new DispatchOrder(FairSharePolicy.LeastInFlight, new TenantFairShareKey())
            .Order([.. a, .. b], new Dictionary<Guid, long> { [Sweep] = 16 });

        order.Select(c => c.RowId).ShouldBe([50, 51, 1, 2]);
    }
}
