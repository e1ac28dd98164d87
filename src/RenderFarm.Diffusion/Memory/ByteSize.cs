using System.Globalization;

namespace RenderFarm.Diffusion.Memory;

/// <summary>Memory sizes as people write them: <c>6GiB</c>, <c>512MiB</c>, <c>8GB</c>, <c>1073741824</c>.</summary>
public static class ByteSize
{
    private static readonly (string Suffix, long Factor)[] Units =
    [
        ("KIB", 1L << 10), ("MIB", 1L << 20), ("GIB", 1L << 30), ("TIB", 1L << 40),
        ("KB", 1_000L), ("MB", 1_000_000L), ("GB", 1_000_000_000L), ("TB", 1_000_000_000_000L),
        ("K", 1L << 10), ("M", 1L << 20), ("G", 1L << 30), ("T", 1L << 40),
        ("B", 1L),
    ];

    /// <summary>Parses a size; the error names the accepted forms.</summary>
    public static bool TryParse(string? text, out long bytes, out string error)
    {
        bytes = 0;
        error = "";
        var trimmed = text?.Trim() ?? "";
        if (trimmed.Length == 0)
        {
            error = "a memory size is required (e.g. 8GiB, 512MiB or a number of bytes)";
            return false;
        }

        var upper = trimmed.ToUpperInvariant();
        var (suffix, factor) = Units.FirstOrDefault(u => upper.EndsWith(u.Suffix, StringComparison.Ordinal));
        var number = suffix is null ? upper : upper[..^suffix.Length].TrimEnd();
        factor = suffix is null ? 1 : factor;
        if (!decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
        {
            error = $"'{text}' is not a memory size; write e.g. 8GiB, 6GB, 512MiB or a number of bytes";
            return false;
        }

        if (value <= 0)
        {
            error = $"'{text}': a memory budget must be positive";
            return false;
        }

        var total = value * factor;
        if (total > long.MaxValue)
        {
            error = $"'{text}' is too large";
            return false;
        }

        bytes = (long)decimal.Round(total);
        return true;
    }

    /// <summary>Parses a size or throws <see cref="FormatException"/>.</summary>
    public static long Parse(string text) =>
        TryParse(text, out var bytes, out var error) ? bytes : throw new FormatException(error);

    /// <summary>Binary units with two decimals: <c>1.50 GiB</c>.</summary>
    public static string Format(long bytes)
    {
        var abs = Math.Abs((double)bytes);
        return abs switch
        {
            >= 1L << 40 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 40):0.00} TiB"),
            >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.00} GiB"),
            >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MiB"),
            >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 10):0.0} KiB"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
        };
    }
}
