using System.Net;
using System.Net.Http.Headers;
using RenderFarm.Cli.Farm;

namespace RenderFarm.Cli.Tests;

/// <summary>
/// <c>renderfarm keys</c> on an embedded farm's data folder, and <c>serve</c>'s key switch: open on loopback,
/// keys with <c>--require-api-keys</c> or on any other address (unless <c>--insecure-no-auth</c>).
/// </summary>
public sealed class KeysCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("rf-keys-").FullName;

    private string Data => Path.Combine(_root, "data");

    [Fact]
    public async Task Keys_are_created_once_listed_without_their_secret_and_revoked()
    {
        var created = await Cli.RunAsync("keys", "create", "--tenant", "acme", "--role", "Submitter", "--data", Data);
        created.ExitCode.ShouldBe(0, created.Error);
        var key = created.Output.Trim();
        key.ShouldStartWith("rf_");
        key.ShouldNotContain("\n");
        created.Error.ShouldContain("shown only now");
        var id = key.Split('_')[1];

        var listed = await Cli.RunAsync("keys", "list", "--data", Data);
        listed.ExitCode.ShouldBe(0, listed.Error);
        listed.Output.ShouldContain(id);
        listed.Output.ShouldContain("acme");
        listed.Output.ShouldContain("submitter");
        listed.Output.ShouldNotContain(key[(4 + id.Length)..]);
        File.ReadAllText(Path.Combine(Data, EmbeddedFarm.DatabaseFile), System.Text.Encoding.Latin1).ShouldNotContain(key[(4 + id.Length)..]);

        var revoked = await Cli.RunAsync("keys", "revoke", id, "--data", Data);
        revoked.ExitCode.ShouldBe(0, revoked.Error);
        var again = await Cli.RunAsync("keys", "list", "--data", Data);
        // The REVOKED column now holds a time instead of "-".
        again.Output.Split('\n').Single(l => l.StartsWith(id, StringComparison.Ordinal)).TrimEnd().ShouldNotEndWith("-");
    }

    [Fact]
    public async Task Keys_work_on_a_distributed_farms_postgresql()
    {
        var server = RenderFarm.Testing.LocalServiceSettings.Require("RENDERFARM_POSTGRES");
        var database = "rf_keys_test_" + Guid.NewGuid().ToString("N");
        var admin = new Npgsql.NpgsqlConnectionStringBuilder(server) { Database = "postgres" }.ConnectionString;
        await ExecuteAsync(admin, $"CREATE DATABASE \"{database}\"");
        var farm = new Npgsql.NpgsqlConnectionStringBuilder(server) { Database = database }.ConnectionString;
        try
        {
            var created = await Cli.RunAsync("keys", "create", "--tenant", "render-team", "--role", "operator", "--postgres", farm);
            created.ExitCode.ShouldBe(0, created.Error);
            created.Error.ShouldContain("in PostgreSQL");
            var id = created.Output.Trim().Split('_')[1];

            var listed = await Cli.RunAsync("keys", "list", "--postgres", farm);
            listed.ExitCode.ShouldBe(0, listed.Error);
            listed.Output.ShouldContain($"{id}  render-team");
            listed.Output.ShouldContain("operator");
            (await Cli.RunAsync("keys", "revoke", id, "--postgres", farm)).ExitCode.ShouldBe(0);

            var both = await Cli.RunAsync("keys", "list", "--postgres", farm, "--data", Data);
            both.ExitCode.ShouldBe(2);
        }
        finally
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            await ExecuteAsync(admin, $"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    [Theory]
    [InlineData("create", "--tenant", "acme", "--role", "root")]
    [InlineData("create", "--tenant", "Acme Corp", "--role", "viewer")]
    [InlineData("create", "--tenant", "acme", "--role", "1")]
    [InlineData("create", "--tenant", "acme")]
    [InlineData("revoke", "0123456789abcdef")]
    public async Task Bad_input_is_refused_with_a_message_and_exit_code_2(params string[] args)
    {
        var (exitCode, _, error) = await Cli.RunAsync(["keys", .. args, "--data", Data]);
        exitCode.ShouldBe(2);
        error.ShouldStartWith("error:");
    }

    [Fact]
    public async Task Serve_with_require_api_keys_refuses_requests_without_a_key_and_the_cli_sends_one()
    {
        await using var serve = await EmbeddedServe.StartAsync(Data, 1, "--require-api-keys");
        serve.Output.ShouldContain("auth: API keys required");
        using var http = new HttpClient { BaseAddress = serve.Address };
        (await http.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await http.GetAsync("/alive")).StatusCode.ShouldBe(HttpStatusCode.OK);

        var key = (await Cli.RunAsync("keys", "create", "--tenant", "team", "--role", "viewer", "--data", Data)).Output.Trim();
        var withKey = await Cli.RunAsync("jobs", "--farm", serve.Address.ToString(), "--api-key", key);
        withKey.ExitCode.ShouldBe(0, withKey.Error);
        var without = await Cli.RunAsync("jobs", "--farm", serve.Address.ToString());
        without.ExitCode.ShouldBe(2);
        without.Error.ShouldContain("401");

        // A viewer reads but may not submit.
        var submit = await Cli.RunAsync("submit", "a fox", "--width", "64", "--height", "64", "--steps", "1", "--farm", serve.Address.ToString(), "--api-key", key);
        submit.ExitCode.ShouldBe(2);
        submit.Error.ShouldContain("403");
    }

    [Fact]
    public async Task Serve_on_a_non_loopback_address_requires_keys_unless_told_it_may_run_open()
    {
        await using (var serve = await EmbeddedServe.StartOnAsync("http://0.0.0.0:0", Data))
        {
            serve.Output.ShouldContain("auth: API keys required");
            using var http = new HttpClient { BaseAddress = serve.Address };
            (await http.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
            var key = (await Cli.RunAsync("keys", "create", "--tenant", "team", "--role", "admin", "--data", Data)).Output.Trim();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            (await http.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        await using (var open = await EmbeddedServe.StartOnAsync("http://0.0.0.0:0", Data, 1, "--insecure-no-auth"))
        {
            open.Output.ShouldContain("auth: OPEN on a non-loopback address");
            using var http = new HttpClient { BaseAddress = open.Address };
            (await http.GetAsync("/v1/jobs")).StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        var both = await Cli.RunAsync("serve", "--data", Data, "--require-api-keys", "--insecure-no-auth");
        both.ExitCode.ShouldBe(2);
    }

    [Theory]
    [InlineData("http://127.0.0.1:5180", true)]
    [InlineData("http://localhost:0", true)]
    [InlineData("http://[::1]:5180;http://127.0.0.2:1", true)]
    [InlineData("http://0.0.0.0:5180", false)]
    [InlineData("http://*:5180", false)]
    [InlineData("http://+:5180", false)]
    [InlineData("http://[::]:5180", false)]
    [InlineData("http://127.0.0.1:5180;http://192.168.1.5:5180", false)]
    [InlineData("http://farm.example:5180", false)]
    public void Only_loopback_addresses_count_as_loopback(string urls, bool loopback) =>
        EmbeddedFarm.IsLoopbackOnly(urls).ShouldBe(loopback);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }
}
