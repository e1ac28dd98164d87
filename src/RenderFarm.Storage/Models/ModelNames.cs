using System.Text.RegularExpressions;

namespace RenderFarm.Storage.Models;

/// <summary>
/// The rule for a model's name in the store. Stricter than a folder name on purpose: the name becomes an S3 key
/// segment, a folder under every worker's models root and a word in job requests, so it is kept to characters that
/// mean the same everywhere.
/// </summary>
public static partial class ModelNames
{
    /// <summary>The longest name accepted.</summary>
    public const int MaxLength = 100;

    /// <summary>The rule, as the error messages state it.</summary>
    public const string Rule = "1-100 characters: letters, digits, '.', '_' and '-', starting with a letter or digit";

    /// <summary>Whether <paramref name="name"/> may name a model in the store.</summary>
    public static bool IsValid(string? name) => name is not null && Pattern().IsMatch(name);

    /// <summary>Throws <see cref="ArgumentException"/> naming the rule when <paramref name="name"/> breaks it.</summary>
    public static void Validate(string? name, string paramName = "name")
    {
        if (!IsValid(name))
        {
            throw new ArgumentException($"'{name}' is not a valid model name ({Rule}).", paramName);
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
