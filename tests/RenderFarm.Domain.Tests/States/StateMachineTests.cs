using RenderFarm.Domain.States;

namespace RenderFarm.Domain.Tests.States;

public class StateMachineTests
{
    private static readonly HashSet<(ItemState, ItemState)> AllowedItemMoves =
    [
        (ItemState.Queued, ItemState.Running),
        (ItemState.Queued, ItemState.Canceled),
        (ItemState.Running, ItemState.Succeeded),
        (ItemState.Running, ItemState.Retrying),
        (ItemState.Running, ItemState.Failed),
        (ItemState.Running, ItemState.Canceled),
        (ItemState.Retrying, ItemState.Queued),
        (ItemState.Retrying, ItemState.Canceled),
    ];

    private static readonly HashSet<(JobState, JobState)> AllowedJobMoves =
    [
        (JobState.Queued, JobState.Running),
        (JobState.Queued, JobState.Canceled),
        (JobState.Running, JobState.Succeeded),
        (JobState.Running, JobState.CompletedWithErrors),
        (JobState.Running, JobState.Failed),
        (JobState.Running, JobState.Canceled),
    ];

    public static TheoryData<ItemState, ItemState> AllItemPairs()
    {
        var data = new TheoryData<ItemState, ItemState>();
        foreach (var from in Enum.GetValues<ItemState>())
        {
            foreach (var to in Enum.GetValues<ItemState>())
            {
                data.Add(from, to);
            }
        }

        return data;
    }

    public static TheoryData<JobState, JobState> AllJobPairs()
    {
        var data = new TheoryData<JobState, JobState>();
        foreach (var from in Enum.GetValues<JobState>())
        {
            foreach (var to in Enum.GetValues<JobState>())
            {
                data.Add(from, to);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AllItemPairs))]
    public void Item_transition_is_allowed_exactly_when_the_table_says(ItemState from, ItemState to)
    {
        var allowed = AllowedItemMoves.Contains((from, to));
        ItemStateMachine.CanMove(from, to).ShouldBe(allowed);
        if (allowed)
        {
            ItemStateMachine.Move(from, to).ShouldBe(to);
        }
        else
        {
            var ex = Should.Throw<InvalidStateTransitionException>(() => ItemStateMachine.Move(from, to));
            ex.Message.ShouldBe($"A item cannot move from {from} to {to}.");
            (ex.From, ex.To).ShouldBe((from.ToString(), to.ToString()));
        }
    }

    [Theory]
    [MemberData(nameof(AllJobPairs))]
    public void Job_transition_is_allowed_exactly_when_the_table_says(JobState from, JobState to)
    {
        var allowed = AllowedJobMoves.Contains((from, to));
        JobStateMachine.CanMove(from, to).ShouldBe(allowed);
        if (allowed)
        {
            JobStateMachine.Move(from, to).ShouldBe(to);
        }
        else
        {
            Should.Throw<InvalidStateTransitionException>(() => JobStateMachine.Move(from, to));
        }
    }

    [Fact]
    public void Final_states_are_the_ones_without_moves()
    {
        foreach (var state in Enum.GetValues<ItemState>())
        {
            ItemStateMachine.IsFinal(state).ShouldBe(Enum.GetValues<ItemState>().All(to => !ItemStateMachine.CanMove(state, to)), state.ToString());
        }

        foreach (var state in Enum.GetValues<JobState>())
        {
            JobStateMachine.IsFinal(state).ShouldBe(Enum.GetValues<JobState>().All(to => !JobStateMachine.CanMove(state, to)), state.ToString());
        }
    }

    [Fact]
    public void Persisted_state_values_are_pinned()
    {
        Enum.GetValues<JobState>().ToDictionary(s => s.ToString(), s => (int)s).ShouldBe(new Dictionary<string, int>
        {
            ["Queued"] = 0, ["Running"] = 1, ["Succeeded"] = 2, ["Failed"] = 3, ["Canceled"] = 4, ["CompletedWithErrors"] = 5,
        });
        Enum.GetValues<ItemState>().ToDictionary(s => s.ToString(), s => (int)s).ShouldBe(new Dictionary<string, int>
        {
            ["Queued"] = 0, ["Running"] = 1, ["Retrying"] = 2, ["Succeeded"] = 3, ["Failed"] = 4, ["Canceled"] = 5,
        });
    }

    [Theory]
    [InlineData(5, 0, 0, 0, 0, 0, JobState.Queued)]
    [InlineData(4, 1, 0, 0, 0, 0, JobState.Running)]
    [InlineData(4, 0, 1, 0, 0, 0, JobState.Running)]
    [InlineData(4, 0, 0, 1, 0, 0, JobState.Running)]
    [InlineData(0, 0, 0, 5, 0, 0, JobState.Succeeded)]
    [InlineData(0, 0, 0, 4, 1, 0, JobState.CompletedWithErrors)]
    [InlineData(0, 0, 0, 3, 1, 1, JobState.CompletedWithErrors)]
    [InlineData(0, 0, 0, 0, 5, 0, JobState.Failed)]
    [InlineData(0, 0, 0, 0, 3, 2, JobState.Failed)]
    [InlineData(0, 0, 0, 3, 0, 2, JobState.Canceled)]
    public void Job_state_follows_item_counts(long queued, long running, long retrying, long succeeded, long failed, long canceled, JobState expected) =>
        JobStateMachine.Derive(new ItemCounts(queued, running, retrying, succeeded, failed, canceled)).ShouldBe(expected);

    [Theory]
    [InlineData(0, 0, 0, 4, 1, 0, JobState.Failed)]
    [InlineData(0, 0, 0, 5, 0, 0, JobState.Succeeded)]
    [InlineData(2, 0, 0, 2, 1, 0, JobState.Running)]
    public void A_job_whose_items_are_parts_of_one_image_fails_when_any_part_fails(long queued, long running, long retrying, long succeeded, long failed, long canceled, JobState expected) =>
        JobStateMachine.Derive(new ItemCounts(queued, running, retrying, succeeded, failed, canceled), partialSuccess: false).ShouldBe(expected);

    [Fact]
    public void Every_final_state_is_listed_for_queries() =>
        JobStateMachine.FinalStates.ShouldBe(Enum.GetValues<JobState>().Where(JobStateMachine.IsFinal), ignoreOrder: true);

    [Fact]
    public void Job_without_items_has_no_state() =>
        Should.Throw<ArgumentOutOfRangeException>(() => JobStateMachine.Derive(default));
}
