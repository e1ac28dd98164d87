using System.Net.Sockets;
using MassTransit;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace RenderFarm.Coordinator.Consumers;

/// <summary>
/// The coordinator's consumers ride out a database outage: a message whose handling failed because the database
/// could not be reached is retried in process with exponential backoff (1 s doubling to 10 s, about
/// <see cref="Span"/> in all), long enough for a restart or a failover, before MassTransit would move it to an
/// <c>_error</c> queue. Before this, the bus-wide default (200 ms, 1 s, 5 s) dead-lettered every event that arrived
/// during a 15 s PostgreSQL restart, and the ledger never learned of images already in the store.
/// </summary>
/// <remarks>
/// Why in-process retry rather than redelivery: MassTransit's delayed redelivery needs a message scheduler, and the
/// RabbitMQ here has no delayed-message-exchange plugin (nor a scheduler store: no MassTransit persistence package is
/// served). The message stays unacknowledged meanwhile, so a coordinator that dies during the wait loses nothing:
/// the broker redelivers it to the next one. Faults of other kinds keep the bus's short default retry.
/// </remarks>
internal static class DatabaseOutageRetry
{
    public const int RetryLimit = 32;

    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Longest wait between tries, so a message is handled at most this long after the database is back (a waiting
    /// message holds its consumer's concurrency slot, so new ones wait behind it).
    /// </summary>
    public static readonly TimeSpan MaxInterval = TimeSpan.FromSeconds(10);

    /// <summary>Roughly the longest outage ridden out: 1 + 2 + 4 + 8 s, then 10 s per remaining try.</summary>
    public static readonly TimeSpan Span = TimeSpan.FromSeconds(15 + (RetryLimit - 4) * 10);

    /// <summary>For <c>AddConsumer</c>: the outage retry on this consumer (batch consumers included: it wraps the batch).</summary>
    public static void Configure<TConsumer>(IRegistrationContext context, IConsumerConfigurator<TConsumer> consumer)
        where TConsumer : class
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(consumer);
        var watch = context.GetRequiredService<DatabaseOutageWatch>();
        consumer.UseMessageRetry(retry =>
        {
            retry.Exponential(RetryLimit, MinInterval, MaxInterval, MinInterval);
            retry.Handle<Exception>(IsDatabaseUnreachable);
            retry.ConnectRetryObserver(watch);
        });
    }

    /// <summary>
    /// True when the failure is the database being unreachable or going away (connection refused or reset, the
    /// server shutting down or starting, Npgsql's retrying strategy giving up on such errors), anywhere in the chain.
    /// </summary>
    public static bool IsDatabaseUnreachable(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case PostgresException pg when pg.SqlState.StartsWith("08", StringComparison.Ordinal)
                    || pg.SqlState.StartsWith("57P", StringComparison.Ordinal)
                    || pg.SqlState.StartsWith("53", StringComparison.Ordinal):
                case NpgsqlException { IsTransient: true }:
                case SqliteException { SqliteErrorCode: 5 or 6 }: // SQLITE_BUSY, SQLITE_LOCKED
                case SocketException:
                case TimeoutException:
                    return true;
                case RetryLimitExceededException:
                    // The execution strategy gave up; what it gave up on is the inner exception, judged next.
                    break;
            }
        }

        return false;
    }
}
