namespace RenderFarm.Coordinator;

/// <summary>Paths the API serves, for links in responses and events.</summary>
public static class CoordinatorRoutes
{
    public const string Jobs = "/v1/jobs";

    public const string Images = "/v1/images";

    public const string Workers = "/v1/workers";

    public const string DeadLetters = "/v1/dead-letters";

    /// <summary>Header a client sends so a retried submission returns the job of the first one.</summary>
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    /// <summary>Header on a replayed idempotent response (as Stripe names it), so clients can tell.</summary>
    public const string IdempotentReplayedHeader = "Idempotent-Replayed";

    public static string Job(Guid jobId) => $"{Jobs}/{jobId}";

    public static string ImageUrl(Guid jobId, long index) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Images}/{jobId}/{index}");
}
