using System.Net.Sockets;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using RenderFarm.Coordinator.Consumers;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// Which failures the consumers' long database-outage retry covers. The outage itself, PostgreSQL stopped in immediate
/// mode for 15 s with a job in flight and nothing dead-lettered, is <c>ServiceFaultTests</c> in the integration tests.
/// </summary>
public sealed class DatabaseOutageRetryTests
{
    [Fact]
    public void A_database_that_cannot_be_reached_is_an_outage_wherever_it_sits_in_the_chain()
    {
        var refused = new NpgsqlException("Failed to connect to 127.0.0.1:5432", new SocketException((int)SocketError.ConnectionRefused));
        DatabaseOutageRetry.IsDatabaseUnreachable(refused).ShouldBeTrue();
        DatabaseOutageRetry.IsDatabaseUnreachable(new DbUpdateException("saving", refused)).ShouldBeTrue();
        DatabaseOutageRetry.IsDatabaseUnreachable(new RetryLimitExceededException("gave up", refused)).ShouldBeTrue();
        DatabaseOutageRetry.IsDatabaseUnreachable(new InvalidOperationException("wrapped", new TimeoutException())).ShouldBeTrue();
        DatabaseOutageRetry.IsDatabaseUnreachable(Postgres("57P01")).ShouldBeTrue("admin shutdown");
        DatabaseOutageRetry.IsDatabaseUnreachable(Postgres("57P03")).ShouldBeTrue("the database system is starting up");
        DatabaseOutageRetry.IsDatabaseUnreachable(Postgres("08006")).ShouldBeTrue("connection failure");
    }

    [Fact]
    public void A_message_the_database_refuses_is_not_an_outage()
    {
        DatabaseOutageRetry.IsDatabaseUnreachable(Postgres("23505")).ShouldBeFalse("unique violation");
        DatabaseOutageRetry.IsDatabaseUnreachable(Postgres("22P02")).ShouldBeFalse("invalid input");
        DatabaseOutageRetry.IsDatabaseUnreachable(new ArgumentException("bad")).ShouldBeFalse();
        DatabaseOutageRetry.IsDatabaseUnreachable(new DbUpdateException("saving", new InvalidOperationException())).ShouldBeFalse();
    }

    private static PostgresException Postgres(string sqlState) => new("message", "FATAL", "FATAL", sqlState);
}
