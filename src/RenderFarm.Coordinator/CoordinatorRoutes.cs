namespace RenderFarm.Coordinator;

/// <summary>Paths the API serves, for links in responses and events.</summary>
public static class CoordinatorRoutes
{
    public const string Jobs = "/v1/jobs";

    public const string Images = "/v1/images";

    public const string Workers = "/v1/workers";

    /// <summary>The operators' reads: fleet, queues and the waiting queue.</summary>
    public const string Monitoring = "/v1/monitoring";

    public const string DeadLetters = "/v1/dead-letters";

    /// <summary>Header a client sends so a retried submission returns the job of the first one.</summary>
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    /// <summary>Header on a replayed idempotent response (as Stripe names it), so clients can tell.</summary>
    public const string IdempotentReplayedHeader = "Idempotent-Replayed";

    public static string Job(Guid jobId) => $"{Jobs}/{jobId}";

    /// <summary>
    /// The latest preview of a running item; with <paramref name="step"/> as a query, which the endpoint ignores, so
    /// that each preview event names a URL of its own and a browser fetches it afresh.
    /// </summary>
    public static string ItemPreviewUrl(Guid jobId, long index, int? step = null) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{Jobs}/{jobId}/items/{index}/preview{(step is { } s ? $"?step={s}" : "")}");

    /// <summary>A published WebDataset shard of a job (its tar).</summary>
    public static string ShardUrl(Guid jobId, int shard) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Jobs}/{jobId}/shards/{shard}");

    public static string ImageUrl(Guid jobId, long index) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Images}/{jobId}/{index}");
}
