using System.Text.RegularExpressions;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>
/// Splits an A1111 infotext into the keys A1111's <c>png-info</c> answers with: <c>Prompt</c>, <c>Negative prompt</c>,
/// each <c>Key: value</c> of the settings line (quoted values unquoted), and <c>Size-1</c>/<c>Size-2</c>.
/// </summary>
/// <remarks>
/// Written here rather than with the engine's <c>GenerationParameters.Parse</c>: that one reads back the fields the
/// farm writes and throws when one is missing, while png-info must read any A1111 image's text, keys unknown to the
/// farm included, and never fail on it.
/// </remarks>
internal static partial class Automatic1111InfoText
{
    public static IReadOnlyDictionary<string, string> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var settings = lines[^1];
        var body = lines[..^1];
        if (SettingPairs().Matches(settings).Count < 3)
        {
            // A1111's rule: a last line with fewer than three settings is part of the prompt.
            body = lines;
            settings = "";
        }

        var prompt = new List<string>();
        var negative = new List<string>();
        var inNegative = false;
        foreach (var line in body)
        {
            if (line.StartsWith("Negative prompt:", StringComparison.Ordinal))
            {
                inNegative = true;
                negative.Add(line["Negative prompt:".Length..].TrimStart());
            }
            else
            {
                (inNegative ? negative : prompt).Add(line);
            }
        }

        result["Prompt"] = string.Join('\n', prompt);
        result["Negative prompt"] = string.Join('\n', negative);
        foreach (Match pair in SettingPairs().Matches(settings))
        {
            var key = pair.Groups["key"].Value.Trim();
            var value = pair.Groups["value"].Value.Trim();
            if (value.Length >= 2 && value[0] == '"' && value[^1] == '"')
            {
                value = Regex.Unescape(value[1..^1]);
            }

            // A1111 splits sizes ("Size: 512x768", "Hires resize: 1024x1536") into key-1 and key-2.
            if ((key == "Size" || key.EndsWith("resize", StringComparison.OrdinalIgnoreCase)) && SizeValue().Match(value) is { Success: true } parts)
            {
                result[key + "-1"] = parts.Groups[1].Value;
                result[key + "-2"] = parts.Groups[2].Value;
                continue;
            }

            result[key] = value;
        }

        return result;
    }

    // "Key: value," where a value is either quoted (commas allowed inside) or runs to the next comma.
    [GeneratedRegex("""\s*(?<key>\w[\w \-/]+):\s*(?<value>"(?:\\.|[^\\"])+"|[^,]*)(?:,|$)""")]
    private static partial Regex SettingPairs();

    [GeneratedRegex(@"^(\d+)x(\d+)$")]
    private static partial Regex SizeValue();
}
