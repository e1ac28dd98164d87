using System.Collections.Concurrent;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>One A1111 call in flight: the farm jobs it submitted and when.</summary>
internal sealed record Automatic1111Task(Guid Id, string Kind, IReadOnlyList<Guid> JobIds, DateTimeOffset StartedAt, string Tenant);

/// <summary>
/// The A1111 calls this coordinator process has submitted whose jobs may still run: what <c>/sdapi/v1/progress</c>
/// reports and <c>/sdapi/v1/interrupt</c> cancels, as A1111's one global "current job" would be. A call stays listed
/// after its client has gone or its wait timed out, until its jobs are seen final (the routes prune it then), so an
/// interrupt still reaches a job whose request was dropped. In memory: after a restart the jobs are ordinary farm
/// jobs (cancel them with <c>POST /v1/jobs/{id}/cancel</c>); with several coordinators each knows its own calls.
/// </summary>
internal sealed class Automatic1111Tasks(TimeProvider clock)
{
    private readonly ConcurrentDictionary<Guid, Automatic1111Task> _tasks = new();

    public Automatic1111Task Start(string kind, IReadOnlyList<Guid> jobIds, string tenant)
    {
        var task = new Automatic1111Task(Guid.CreateVersion7(), kind, jobIds, clock.GetUtcNow(), tenant);
        _tasks[task.Id] = task;
        return task;
    }

    public void Finish(Guid taskId) => _tasks.TryRemove(taskId, out _);

    /// <summary>Calls in flight, oldest first: of one tenant, or with <paramref name="tenant"/> null of all.</summary>
    public IReadOnlyList<Automatic1111Task> InFlight(string? tenant = null) =>
        [.. _tasks.Values.Where(t => tenant is null || t.Tenant == tenant).OrderBy(t => t.StartedAt).ThenBy(t => t.Id)];
}
