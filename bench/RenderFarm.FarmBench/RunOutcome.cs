using Npgsql;
using RenderFarm.Storage;

/// <summary>
/// Whether a finished run kept the farm's promise, read from the run's own database and store after the job ended:
/// every item ends with exactly one image, and nothing is rendered twice.
/// </summary>
/// <param name="Lost">Items that did not end Succeeded with an image key whose object is in the store.</param>
/// <param name="Duplicated">
/// Items sent to a worker more than once (attempt &gt; 1: with no faults injected, a second attempt is work done twice),
/// plus succeeded completions the job's counter holds beyond its succeeded items, plus stored objects under the job's
/// folder that no item names.
/// </param>
/// <param name="StoredImages">Objects under the job's folder in the store.</param>
internal sealed record RunOutcome(long Lost, long Duplicated, long StoredImages)
{
    public static async Task<RunOutcome> ReadAsync(FarmSession farm, Guid jobId, CancellationToken ct)
    {
        var stored = new HashSet<string>(StringComparer.Ordinal);
        var store = farm.OpenStore();
        try
        {
            await foreach (var artifact in store.ListAsync(ArtifactKeys.JobPrefix(jobId), ct))
                stored.Add(artifact.Key);
        }
        finally
        {
            (store as IDisposable)?.Dispose();
        }

        await using var connection = new NpgsqlConnection(farm.Postgres);
        await connection.OpenAsync(ct);
        long lost = 0, secondAttempts = 0, succeeded = 0;
        var named = new HashSet<string>(StringComparer.Ordinal);
        await using (var items = new NpgsqlCommand("SELECT state, attempt, artifact_key FROM items WHERE job_id = @job", connection))
        {
            items.Parameters.AddWithValue("job", jobId);
            await using var reader = await items.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                // ItemState.Succeeded is 3 (the column holds the enum's number).
                var isSucceeded = reader.GetInt32(0) == 3;
                var key = reader.IsDBNull(2) ? null : reader.GetString(2);
                if (key is not null)
                    named.Add(key);
                if (isSucceeded)
                    succeeded++;
                if (!isSucceeded || key is null || !stored.Contains(key))
                    lost++;
                if (reader.GetInt32(1) > 1)
                    secondAttempts++;
            }
        }

        await using var job = new NpgsqlCommand("SELECT succeeded_items FROM jobs WHERE id = @job", connection);
        job.Parameters.AddWithValue("job", jobId);
        var counted = (long)(await job.ExecuteScalarAsync(ct))!;
        var unnamed = stored.Count(key => !named.Contains(key));
        return new RunOutcome(lost, secondAttempts + Math.Max(0, counted - succeeded) + unnamed, stored.Count);
    }
}
