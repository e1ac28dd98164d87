using System.Text.Json;

namespace RenderFarm.ModelGenerator.Upscaler;

/// <summary>The tiny upscaler's memory profile, written into its config (filled in from a measurement on the dev VM).</summary>
internal static class UpscalerMemory
{
    public static void Write(Utf8JsonWriter w)
    {
        _ = w;
    }
}
