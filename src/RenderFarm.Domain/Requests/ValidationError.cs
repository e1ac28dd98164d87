namespace RenderFarm.Domain.Requests;

/// <summary>One broken rule.</summary>
/// <param name="Field">The camelCase JSON path of the offending field, e.g. <c>width</c> or <c>sweep.seeds[2]</c>.</param>
/// <param name="Message">What is wrong and how to fix it, fit to show a user as is.</param>
public sealed record ValidationError(string Field, string Message);
