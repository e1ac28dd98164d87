using System.Text.Json;

namespace RenderFarm.ModelGenerator.Upscaler;

/// <summary>
/// The tiny upscaler's memory profile (the engine's <c>UpscalerMemoryProfile</c>), written into its config so the
/// planner can choose a tile under a budget from the first upscale. Measured on the 2-core dev VM with
/// <c>dotnet run -c Release --project bench/RenderFarm.MemoryBench -- upscaler --scale S</c> (CPU, process peak RSS);
/// another machine's base memory differs, so the numbers are only approximately right there.
/// </summary>
internal static class UpscalerMemory
{
    private const string Method = "Process peak RSS (VmHWM) of the second of two runs of one square tile per probe (64² to 512²), each probe in a fresh process, " +
        "on the 2-core dev VM; activation = peak − RSS after the session loaded and ran a 1×1 tile; fitted c0 + c1·n (n = tile pixels) on relative error.";

    public static void Write(Utf8JsonWriter w, int scale)
    {
        // (base, weights, activation fixed, activation per pixel, seconds per pixel, load seconds) as the bench fitted them.
        var (baseBytes, weights, fixedBytes, perPixel, secondsPerPixel, load) = scale == 4
            ? (58_499_072L, 12_275_712L, 91_983.0, 400.44, 1.413e-7, 0.111)
            : (58_544_128L, 12_222_464L, 18_098.0, 138.62, 4.75e-8, 0.104);
        w.WriteStartObject("memory");
        w.WriteString("kind", "measured");
        w.WriteString("device", "cpu");
        w.WriteString("method", Method);
        w.WriteNumber("baseBytes", baseBytes);
        w.WriteStartObject("model");
        w.WriteNumber("weightBytes", weights);
        w.WriteStartObject("activationBytes");
        w.WriteNumber("fixed", fixedBytes);
        w.WriteNumber("perToken", perPixel);
        w.WriteNumber("perTokenSquared", 0);
        w.WriteEndObject();
        w.WriteStartObject("seconds");
        w.WriteNumber("fixed", 0);
        w.WriteNumber("perToken", secondsPerPixel);
        w.WriteNumber("perTokenSquared", 0);
        w.WriteEndObject();
        w.WriteNumber("loadSeconds", load);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
