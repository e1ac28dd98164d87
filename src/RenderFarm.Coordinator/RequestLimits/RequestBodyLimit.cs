using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace RenderFarm.Coordinator.RequestLimits;

/// <summary>
/// Applies <see cref="RequestLimitsOptions.MaxBodyBytes"/> to every request, whichever server hosts the app: a declared
/// length over the limit is refused at once with a ProblemDetails naming the limit, and the server's own body-size
/// feature (Kestrel's) stops a chunked body at the same size (its 413 reaches the exception handler).
/// </summary>
internal static class RequestBodyLimit
{
    public static IServiceCollection AddRequestLimits(this IServiceCollection services)
    {
        services.AddOptions<RequestLimitsOptions>()
            .BindConfiguration(RequestLimitsOptions.SectionName)
            .Validate(o => o.MaxBodyBytes > 0, $"{RequestLimitsOptions.SectionName}:MaxBodyBytes must be above 0.")
            .ValidateOnStart();
        return services;
    }

    public static IApplicationBuilder UseRequestBodyLimit(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var limit = context.RequestServices.GetRequiredService<IOptions<RequestLimitsOptions>>().Value.MaxBodyBytes;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = limit;
        }

        if (context.Request.ContentLength > limit)
        {
            await TypedResults.Problem(
                $"The request body is {context.Request.ContentLength} bytes; this coordinator accepts at most {limit} ({RequestLimitsOptions.SectionName}:MaxBodyBytes).",
                statusCode: StatusCodes.Status413PayloadTooLarge,
                title: "The request body is too large.").ExecuteAsync(context);
            return;
        }

        await next(context);
    });
}
