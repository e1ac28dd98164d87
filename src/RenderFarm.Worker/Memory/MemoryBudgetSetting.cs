using System.Globalization;
using RenderFarm.Diffusion.Memory;

namespace RenderFarm.Worker.Memory;

/// <summary>
/// A memory budget as an operator writes it: a size (<c>6GiB</c>, <c>512MiB</c>, a number of bytes) or a share of
/// the device's free memory when the worker starts (<c>50%</c> or <c>0.5</c>). Exactly one of
/// <see cref="Bytes"/> and <see cref="FractionOfFree"/> is set.
/// </summary>
public sealed record MemoryBudgetSetting
{
    private MemoryBudgetSetting(long? bytes, double? fractionOfFree)
    {
        Bytes = bytes;
        FractionOfFree = fractionOfFree;
    }

    /// <summary>A fixed size in bytes.</summary>
    public long? Bytes { get; }

    /// <summary>A share of the free memory at start, in (0, 1].</summary>
    public double? FractionOfFree { get; }

    /// <summary>Parses <paramref name="text"/>; <paramref name="error"/> says what is wrong and what is accepted.</summary>
    public static bool TryParse(string? text, out MemoryBudgetSetting? setting, out string error)
    {
        setting = null;
        error = "";
        var trimmed = text?.Trim() ?? "";
        if (trimmed.Length == 0)
        {
            error = "must be a size (6GiB, 512MiB, a number of bytes) or a share of free memory (50% or 0.5), got an empty value";
            return false;
        }

        if (trimmed.EndsWith('%'))
        {
            if (!decimal.TryParse(trimmed[..^1].TrimEnd(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var percent)
                || percent is <= 0 or > 100)
            {
                error = $"'{text}': a share of free memory must be a percentage above 0% and at most 100%";
                return false;
            }

            setting = new MemoryBudgetSetting(null, (double)(percent / 100));
            return true;
        }

        // A bare number with a decimal point is a fraction of free memory; a bare whole number is bytes (as
        // ByteSize reads it), so "1" is one byte, never "all of it".
        if (trimmed.Contains('.', StringComparison.Ordinal) && trimmed.All(c => char.IsAsciiDigit(c) || c == '.'))
        {
            if (!decimal.TryParse(trimmed, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var fraction)
                || fraction is <= 0 or > 1)
            {
                error = $"'{text}' is neither a fraction of free memory (above 0 and at most 1, e.g. 0.5) nor a size (e.g. 6GiB, 512MiB or a whole number of bytes)";
                return false;
            }

            setting = new MemoryBudgetSetting(null, (double)fraction);
            return true;
        }

        if (!ByteSize.TryParse(trimmed, out var bytes, out var sizeError))
        {
            error = $"{sizeError}, or a share of free memory such as 50% or 0.5";
            return false;
        }

        setting = new MemoryBudgetSetting(bytes, null);
        return true;
    }

    /// <summary>Parses <paramref name="text"/> or throws <see cref="FormatException"/> with the reason.</summary>
    public static MemoryBudgetSetting Parse(string text) =>
        TryParse(text, out var setting, out var error) ? setting! : throw new FormatException(error);

    /// <summary>The budget in bytes on a device with <paramref name="freeBytes"/> free now (at least 1 byte).</summary>
    public long Resolve(long freeBytes) =>
        Bytes ?? Math.Max(1, (long)Math.Floor(FractionOfFree!.Value * Math.Max(0, freeBytes)));

    /// <summary><c>6.00 GiB</c> or <c>50% of free memory</c>.</summary>
    public override string ToString() => Bytes is { } bytes
        ? ByteSize.Format(bytes)
        : string.Create(CultureInfo.InvariantCulture, $"{FractionOfFree * 100:0.##}% of free memory");
}
