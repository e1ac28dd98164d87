using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RenderFarm.Coordinator.Hosting;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.States;

namespace RenderFarm.Coordinator.Retention;

/// <summary>
/// Forgets what has outlived its use, on a ticker: finished jobs older than <see cref="RetentionOptions.JobAge"/>
/// (through <see cref="JobDeletion"/>, the same path as <c>DELETE /v1/jobs/{id}</c>), idempotency keys older than
/// <see cref="RetentionOptions.IdempotencyKeyAge"/>, workers not heard from for <see cref="RetentionOptions.WorkerAge"/>,
/// and the bases and tiles of stitched hires jobs unless <see cref="RetentionOptions.KeepHiresParts"/>.
/// </summary>
/// <remarks>Several coordinators may run it at once: every step is a conditional delete, so the second finds nothing.</remarks>
internal sealed partial class RetentionService(
    IServiceScopeFactory scopes,
    TimeProvider clock,
    IOptions<RetentionOptions> options,
    ILogger<RetentionService> logger) : PeriodicPassService(clock)
{

    private readonly RetentionOptions _options = options.Value;

    internal readonly record struct Result(int Jobs, int Objects, int IdempotencyKeys, int Workers, int HiresJobs = 0, int HiresParts = 0);

    protected override TimeSpan Interval => _options.Interval;

    protected override async Task PassAsync(CancellationToken cancellationToken)
    {
        var result = await RunOnceAsync(cancellationToken);
        if (result.Jobs + result.IdempotencyKeys + result.Workers + result.HiresJobs > 0)
        {
            LogForgot(result.Jobs, result.Objects, result.IdempotencyKeys, result.Workers, result.HiresParts, result.HiresJobs);
        }
    }

    protected override void PassFailed(Exception exception) => LogPassFailed(exception);

    /// <summary>One pass: at most <see cref="RetentionOptions.BatchSize"/> jobs, every expired key and worker row.</summary>
    internal async Task<Result> RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = Clock.GetUtcNow().UtcDateTime;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<CoordinatorDbContext>();

        int jobs = 0, objects = 0;
        if (_options.JobAge is { } jobAge)
        {
            var before = now - jobAge;
            var expired = await db.Jobs.AsNoTracking()
                .Where(j => JobStateMachine.FinalStates.Contains(j.State) && j.FinishedAt != null && j.FinishedAt < before)
                .OrderBy(j => j.FinishedAt)
                .Select(j => j.Id)
                .Take(_options.BatchSize)
                .ToListAsync(cancellationToken);
            var deletion = scope.ServiceProvider.GetRequiredService<JobDeletion>();
            foreach (var id in expired)
            {
                var (outcome, _, removed) = await deletion.DeleteAsync(id, cancellationToken);
                if (outcome == DeleteOutcome.Deleted)
                {
                    jobs++;
                    objects += removed;
                }
            }
        }

        var keysBefore = now - _options.IdempotencyKeyAge;
        var keys = await db.IdempotencyKeys.Where(k => k.CreatedAt < keysBefore).ExecuteDeleteAsync(cancellationToken);
        var workersBefore = now - _options.WorkerAge;
        var workers = await db.Workers.Where(w => w.LastHeartbeatAt < workersBefore).ExecuteDeleteAsync(cancellationToken);
        var (hiresJobs, hiresParts) = _options.KeepHiresParts
            ? (0, 0)
            : await scope.ServiceProvider.GetRequiredService<HiresPartsCleanup>().RunOnceAsync(_options.BatchSize, cancellationToken);
        return new Result(jobs, objects, keys, workers, hiresJobs, hiresParts);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention: deleted {Jobs} finished jobs ({Objects} stored objects), {Keys} expired idempotency keys, {Workers} departed workers, {HiresParts} hires bases and tiles of {HiresJobs} stitched jobs")]
    private partial void LogForgot(int jobs, int objects, int keys, int workers, int hiresParts, int hiresJobs);

    [LoggerMessage(Level = LogLevel.Error, Message = "Retention pass failed; it runs again at the next tick")]
    private partial void LogPassFailed(Exception exception);
}
