using System.Globalization;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>
/// Errors in the two shapes A1111 clients parse: FastAPI's 422 for a request whose fields are wrong
/// (<c>{"detail": [{"loc", "msg", "type"}]}</c>), and A1111's own handler for everything else
/// (<c>{"error", "detail", "body", "errors"}</c> with the HTTP status).
/// </summary>
internal static class Automatic1111Errors
{
    /// <summary>One bad field: its path under the body (e.g. <c>["override_settings", "sd_model_checkpoint"]</c>) and what to do.</summary>
    public sealed record FieldError(IReadOnlyList<object> Path, string Message);

    public static FieldError Field(string field, string message) => new([field], message);

    public static IResult Validation(IEnumerable<FieldError> errors) => TypedResults.Json(
        new ValidationErrorResponse([.. errors.Select(e => new ValidationErrorItem(["body", .. e.Path], e.Message, "value_error"))]),
        Automatic1111Json.Options,
        statusCode: StatusCodes.Status422UnprocessableEntity);

    public static IResult Http(int status, string detail, string error = "HTTPException", IReadOnlyList<Guid>? jobIds = null) => TypedResults.Json(
        new Automatic1111Error(error, detail, "", string.Create(CultureInfo.InvariantCulture, $"{status}: {detail}"), jobIds),
        Automatic1111Json.Options,
        statusCode: status);
}
