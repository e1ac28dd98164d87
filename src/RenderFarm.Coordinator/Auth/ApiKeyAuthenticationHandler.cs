using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.Auth;

/// <summary>
/// Authenticates <c>Authorization: Bearer KEY</c>, and Basic with the key as the password (any user name), which
/// AUTOMATIC1111 clients (their <c>--api-auth</c>) and browsers (the dashboard's login prompt) send.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IOptionsMonitor<AuthOptions> auth,
    ApiKeys keys,
    IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    // Basic is offered so a browser opening the dashboard asks for the key instead of showing a bare 401.
    private const string Challenge = "Bearer, Basic realm=\"RenderFarm\", charset=\"UTF-8\"";

    /// <summary>The key id of an open farm's callers without a key (not a real key's: those are 16 hex digits).</summary>
    public const string OpenFarmCallerId = "open";

    private static readonly ClaimsPrincipal OpenFarmCaller = Principal(OpenFarmCallerId, FarmClaims.DefaultTenant, FarmRole.Admin);

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            return auth.CurrentValue.RequireApiKeys ? AuthenticateResult.NoResult() : AuthenticateResult.Success(new AuthenticationTicket(OpenFarmCaller, SchemeName));
        }

        if (KeyOf(header) is not { } key)
        {
            return AuthenticateResult.Fail("The Authorization header is neither 'Bearer KEY' nor Basic with the key as the password.");
        }

        if (await keys.VerifyAsync(key, Context.RequestAborted) is not { } identity)
        {
            return AuthenticateResult.Fail("The API key is unknown or revoked.");
        }

        return AuthenticateResult.Success(new AuthenticationTicket(Principal(identity.Id, identity.Tenant, identity.Role), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = Challenge;
        var failure = (await HandleAuthenticateOnceSafeAsync()).Failure?.Message;
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails =
            {
                Status = StatusCodes.Status401Unauthorized,
                Title = "An API key is required.",
                Detail = failure ?? "Send 'Authorization: Bearer KEY' (or Basic with the key as the password); `renderfarm keys create` makes one.",
            },
        });
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        var role = Context.User.FindFirstValue(ClaimTypes.Role) ?? "none";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails =
            {
                Status = StatusCodes.Status403Forbidden,
                Title = "The API key's role does not allow this.",
                Detail = $"The key's role is {role}; see the README's Security section for what each role may do.",
            },
        });
    }

    private static string? KeyOf(string header)
    {
        if (!AuthenticationHeaderValue.TryParse(header, out var value) || string.IsNullOrEmpty(value.Parameter))
        {
            return null;
        }

        if (value.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            return value.Parameter;
        }

        if (!value.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var decoded = new byte[value.Parameter.Length];
        if (!Convert.TryFromBase64String(value.Parameter, decoded, out var written))
        {
            return null;
        }

        var pair = Encoding.UTF8.GetString(decoded, 0, written);
        var colon = pair.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? null : pair[(colon + 1)..];
    }

    private static ClaimsPrincipal Principal(string keyId, string tenant, FarmRole role) =>
        new(new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, keyId),
                new Claim(ClaimTypes.Name, keyId),
                new Claim(ClaimTypes.Role, role.ToString()),
                new Claim(FarmClaims.Tenant, tenant),
            ],
            SchemeName));
}
