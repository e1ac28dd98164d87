using System.Text;
using Microsoft.AspNetCore.Routing.Patterns;

namespace RenderFarm.Coordinator.Tests.Infrastructure;

/// <summary>Concrete request paths for the coordinator's route patterns, for tests that walk every endpoint.</summary>
internal static class RoutePaths
{
    /// <summary>The pattern's path with each parameter replaced by <paramref name="value"/>'s text for it.</summary>
    public static string Fill(RoutePattern pattern, Func<RoutePatternParameterPart, string> value)
    {
        var path = new StringBuilder();
        foreach (var segment in pattern.PathSegments)
        {
            path.Append('/');
            foreach (var part in segment.Parts)
            {
                path.Append(part switch
                {
                    RoutePatternLiteralPart literal => literal.Content,
                    RoutePatternSeparatorPart separator => separator.Content,
                    RoutePatternParameterPart parameter => value(parameter),
                    _ => "",
                });
            }
        }

        return path.Length == 0 ? "/" : path.ToString();
    }

    public static bool IsGuid(RoutePatternParameterPart parameter) => parameter.ParameterPolicies.Any(p => p.Content == "guid");

    public static bool IsInteger(RoutePatternParameterPart parameter) => parameter.ParameterPolicies.Any(p => p.Content is "long" or "int");
}
