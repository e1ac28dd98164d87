using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using RenderFarm.Cli.Farm;
using RenderFarm.Coordinator.Auth;
using RenderFarm.Coordinator.Persistence;

namespace RenderFarm.Cli.Commands;

/// <summary>
/// <c>renderfarm keys create|list|revoke</c>: API keys, on the farm's own database (an embedded farm's
/// <c>--data</c> folder, or PostgreSQL), so the first admin key can be made before any key exists.
/// </summary>
internal static class KeysCommand
{
    public static Command Create()
    {
        var create = new Command("create", "Create a key and print it once (on standard output, alone, for scripts); the farm keeps only its hash.");
        var tenant = new Option<string>("--tenant") { Description = "The tenant the key acts for (lower-case letters, digits, '.', '_', '-').", Required = true };
        var role = new Option<string>("--role") { Description = "admin, operator, submitter or viewer.", Required = true };
        var (createData, createPostgres) = AddDatabaseOptions(create);
        create.Add(tenant);
        create.Add(role);
        create.SetAction((result, ct) => CreateAsync(result, result.GetRequiredValue(tenant), result.GetRequiredValue(role), result.GetValue(createData), result.GetValue(createPostgres), ct));

        var list = new Command("list", "List keys: id, tenant, role, created, revoked (never the keys themselves).");
        var (listData, listPostgres) = AddDatabaseOptions(list);
        list.SetAction((result, ct) => ListAsync(result, result.GetValue(listData), result.GetValue(listPostgres), ct));

        var revoke = new Command("revoke", "Revoke a key: requests with it are refused from now on.");
        var id = new Argument<string>("ID") { Description = "The key's id (as `keys list` shows it) or the whole key." };
        var (revokeData, revokePostgres) = AddDatabaseOptions(revoke);
        revoke.Add(id);
        revoke.SetAction((result, ct) => RevokeAsync(result, result.GetRequiredValue(id), result.GetValue(revokeData), result.GetValue(revokePostgres), ct));

        return new Command("keys", "API keys: create, list and revoke them on the farm's database.") { create, list, revoke };
    }

    private static (Option<string?> Data, Option<string?> Postgres) AddDatabaseOptions(Command command)
    {
        var data = new Option<string?>("--data") { Description = $"The embedded farm's data folder (its renderfarm.db). Default: PostgreSQL when ${DbCommand.PostgresEnvironmentVariable} or --postgres is set, else {EmbeddedFarm.DefaultDataRoot()}." };
        var postgres = new Option<string?>("--postgres") { Description = $"Npgsql connection string of a distributed farm (default: ${DbCommand.PostgresEnvironmentVariable})." };
        command.Add(data);
        command.Add(postgres);
        return (data, postgres);
    }

    private static async Task<int> CreateAsync(ParseResult result, string tenant, string roleName, string? data, string? postgres, CancellationToken cancellationToken)
    {
        if (!Enum.TryParse<FarmRole>(roleName, ignoreCase: true, out var role) || !Enum.IsDefined(role) || int.TryParse(roleName, out _))
        {
            return result.Fail(ExitCodes.InvalidInput, $"--role '{roleName}' is not a role; use one of: admin, operator, submitter, viewer.");
        }

        if (!ApiKeys.IsValidTenant(tenant))
        {
            return result.Fail(ExitCodes.InvalidInput, $"--tenant '{tenant}' is not a tenant name: {ApiKeys.TenantRule}.");
        }

        return await WithKeysAsync(result, data, postgres, async (keys, where) =>
        {
            var created = await keys.CreateAsync(tenant, role, cancellationToken);
            result.Out().WriteLine(created.Key);
            result.Error().WriteLine($"created key {created.Id} ({RoleName(created.Role)} of tenant {created.Tenant}) in {where}. It is shown only now: the farm keeps only its hash.");
            return ExitCodes.Success;
        }, cancellationToken);
    }

    private static Task<int> ListAsync(ParseResult result, string? data, string? postgres, CancellationToken cancellationToken) =>
        WithKeysAsync(result, data, postgres, async (keys, where) =>
        {
            var rows = await keys.ListAsync(cancellationToken);
            var output = result.Out();
            output.WriteLine($"{"ID",-16}  {"TENANT",-20}  {"ROLE",-9}  {"CREATED",-20}  REVOKED");
            foreach (var key in rows)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{key.Id,-16}  {key.Tenant,-20}  {RoleName(key.Role),-9}  {key.CreatedAt:yyyy-MM-ddTHH:mm:ssZ}  {(key.RevokedAt is { } at ? at.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) : "-")}"));
            }

            output.WriteLine($"{rows.Count} key(s) in {where}");
            return ExitCodes.Success;
        }, cancellationToken);

    private static Task<int> RevokeAsync(ParseResult result, string id, string? data, string? postgres, CancellationToken cancellationToken) =>
        WithKeysAsync(result, data, postgres, async (keys, where) =>
        {
            if (!await keys.RevokeAsync(id, cancellationToken))
            {
                return result.Fail(ExitCodes.InvalidInput, $"there is no key '{id}' in {where}; `renderfarm keys list` shows the ids.");
            }

            result.Out().WriteLine($"revoked key {id}: requests with it are refused from now on.");
            return ExitCodes.Success;
        }, cancellationToken);

    // Migrates first: a fresh data folder (no serve run yet) gets its schema, and the first admin key can come before the farm.
    private static async Task<int> WithKeysAsync(ParseResult result, string? data, string? postgres, Func<ApiKeys, string, Task<int>> action, CancellationToken cancellationToken)
    {
        if (data is not null && postgres is not null)
        {
            return result.Fail(ExitCodes.InvalidInput, "give either --data or --postgres, not both.");
        }

        postgres ??= data is null && Environment.GetEnvironmentVariable(DbCommand.PostgresEnvironmentVariable) is { Length: > 0 } env ? env : null;
        string? sqlite = null;
        if (postgres is null)
        {
            var root = Path.GetFullPath(data ?? EmbeddedFarm.DefaultDataRoot());
            try
            {
                Directory.CreateDirectory(root);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return result.Fail(ExitCodes.InvalidInput, $"cannot use the data folder '{root}': {ex.Message}");
            }

            sqlite = Path.Combine(root, EmbeddedFarm.DatabaseFile);
        }

        var where = sqlite ?? "PostgreSQL";
        using var host = DbCommand.BuildHost(sqlite, postgres);
        try
        {
            await CoordinatorDatabase.MigrateAsync(host.Services, cancellationToken);
            await using var scope = host.Services.CreateAsyncScope();
            return await action(scope.ServiceProvider.GetRequiredService<ApiKeys>(), where);
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or ArgumentException or IOException)
        {
            return result.Fail(ExitCodes.Failure, $"the keys in {where} cannot be reached: {ex.Message}");
        }
    }

    private static string RoleName(FarmRole role) => role.ToString().ToLowerInvariant();
}
