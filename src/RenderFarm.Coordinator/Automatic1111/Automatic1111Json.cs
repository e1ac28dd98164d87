using System.Globalization;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RenderFarm.Coordinator.Automatic1111;

/// <summary>A1111's wire format: snake_case names, and whole numbers read as leniently as pydantic reads them.</summary>
internal static class Automatic1111Json
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
        Converters = { new WholeNumberConverter<int>(), new WholeNumberConverter<long>() },
    };

    /// <summary>
    /// Reads <c>512</c>, <c>512.0</c> and <c>"512"</c> as 512, as A1111's pydantic models do (clients computing sizes or
    /// seeds in floating point send <c>512.0</c>); a fraction such as <c>512.5</c> is refused rather than truncated.
    /// System.Text.Json has no setting for this, hence the converter.
    /// </summary>
    private sealed class WholeNumberConverter<T> : JsonConverter<T>
        where T : struct, IBinaryInteger<T>
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            decimal value;
            if (reader.TokenType == JsonTokenType.Number)
            {
                if (!reader.TryGetDecimal(out value))
                {
                    throw new JsonException("The number is out of range.");
                }
            }
            else if (reader.TokenType != JsonTokenType.String
                || !decimal.TryParse(reader.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out value))
            {
                throw new JsonException("Expected a whole number.");
            }

            if (decimal.Truncate(value) != value)
            {
                throw new JsonException("Expected a whole number, not a fraction.");
            }

            try
            {
                return T.CreateChecked(value);
            }
            catch (OverflowException ex)
            {
                throw new JsonException("The number is out of range.", ex);
            }
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) =>
            writer.WriteRawValue(value.ToString(null, CultureInfo.InvariantCulture));
    }
}
