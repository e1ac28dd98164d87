using System.Diagnostics;
using System.Globalization;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Watermarking;
using RenderFarm.ModelGenerator;

// Watermark robustness and cost, and the safety checker's cost (docs/watermark.md, docs/benchmarks.md).
// Usage: dotnet run -c Release --project bench/RenderFarm.WatermarkBench [-- IMAGES [OUTDIR]]
//   IMAGES: renders of the tiny model per kind (default 4); OUTDIR: where marked PNGs are written for the Python
//   cross-check (bench/watermark/reference_check.py read).
var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4;
var outDirectory = args.Length > 1 ? args[1] : null;
var payload = DwtDctWatermark.StableDiffusionPayload.ToArray();
// The tiny model with the tiny safety checker: renders run with the checker off, and the checker is timed on its own.
var model = Path.Combine(Path.GetTempPath(), "watermark-bench-tiny-safety");
if (!Directory.Exists(model))
{
    TestModels.WriteTinyWithSafetyChecker(model);
}

using var pipeline = StableDiffusionPipeline.Open(model);
var checker = pipeline.SafetyChecker ?? throw new InvalidOperationException($"{model} has no safety checker.");
// The first check loads the checker's session; a farm worker keeps it loaded, so that load is not counted.
checker.Check([Smooth(512, 512, 0)]);
var checkTimes = new List<double>();
var images = new List<(string Kind, RgbImage Image)>();
var renderTimes = new List<double>();
var embedTimes = new List<double>();
for (var i = 0; i < count; i++)
{
    var request = new GenerationRequest { Images = GenerationRequest.Seeds("a lighthouse", "", (ulong)(100 + i), 1), Width = 512, Height = 512, Steps = 20, Safety = RenderFarm.Diffusion.Safety.SafetyMode.Off };
    var clock = Stopwatch.StartNew();
    var rendered = pipeline.Generate(request, null, CancellationToken.None).Images[0].Image;
    renderTimes.Add(clock.Elapsed.TotalMilliseconds);
    clock.Restart();
    DwtDctWatermark.Embed(rendered, payload);
    embedTimes.Add(clock.Elapsed.TotalMilliseconds);
    clock.Restart();
    checker.Check([rendered]);
    checkTimes.Add(clock.Elapsed.TotalMilliseconds);
    images.Add(("tiny-model render", rendered));
    images.Add(("smooth", Smooth(512, 512, i)));
}

var decodeClock = Stopwatch.StartNew();
var marked = images.Select(x => (x.Kind, Image: DwtDctWatermark.Embed(x.Image, payload))).ToList();
foreach (var (kind, image) in marked.Take(count))
{
    DwtDctWatermark.Decode(image);
}

var decodeMs = decodeClock.Elapsed.TotalMilliseconds / marked.Count;
if (outDirectory is not null)
{
    Directory.CreateDirectory(outDirectory);
    for (var i = 0; i < marked.Count; i++)
    {
        File.WriteAllBytes(Path.Combine(outDirectory, $"{i:D2}-{marked[i].Kind.Replace(' ', '-')}.png"), PngCodec.Encode(marked[i].Image, null));
    }
}

var attacks = new (string Name, Func<RgbImage, RgbImage> Apply)[]
{
    ("none (PNG round trip)", image => PngCodec.Decode(PngCodec.Encode(image, null))),
    ("resize 0.5x and back", image => ImageOps.Resize(ImageOps.Resize(image, image.Width / 2, image.Height / 2), image.Width, image.Height)),
    ("resize 0.75x and back", image => ImageOps.Resize(ImageOps.Resize(image, image.Width * 3 / 4, image.Height * 3 / 4), image.Width, image.Height)),
    ("JPEG 90", image => PngCodec.Decode(PngCodec.EncodeJpeg(image, 90))),
    ("JPEG 75", image => PngCodec.Decode(PngCodec.EncodeJpeg(image, 75))),
    ("JPEG 50", image => PngCodec.Decode(PngCodec.EncodeJpeg(image, 50))),
};

Console.WriteLine("| attack | images | bit accuracy, mean (min) | payload exact | `watermark decode` finds it | `watermark decode` reports another payload |");
Console.WriteLine("|---|---|---|---|---|---|");
foreach (var kind in marked.Select(m => m.Kind).Distinct())
{
    foreach (var (name, apply) in attacks)
    {
        var accuracies = new List<double>();
        int exact = 0, found = 0, other = 0, total = 0;
        foreach (var (_, image) in marked.Where(m => m.Kind == kind))
        {
            var attacked = apply(image);
            var read = DwtDctWatermark.ReadBytes(attacked, payload.Length);
            var same = 0;
            for (var bit = 0; bit < payload.Length * 8; bit++)
            {
                same += ((read[bit / 8] ^ payload[bit / 8]) >> (7 - bit % 8) & 1) == 0 ? 1 : 0;
            }

            accuracies.Add((double)same / (payload.Length * 8));
            exact += read.AsSpan().SequenceEqual(payload) ? 1 : 0;
            var reading = DwtDctWatermark.Decode(attacked);
            found += reading?.Payload.AsSpan().SequenceEqual(payload) == true ? 1 : 0;
            other += reading is not null && !reading.Payload.AsSpan().SequenceEqual(payload) ? 1 : 0;
            total++;
        }

        Console.WriteLine(FormattableString.Invariant($"| {kind}: {name} | {total} | {accuracies.Average():P1} ({accuracies.Min():P1}) | {exact}/{total} | {found}/{total} | {other}/{total} |"));
    }
}

var clean = images.Count(x => DwtDctWatermark.Decode(x.Image) is not null);
Console.WriteLine(FormattableString.Invariant($"\nunmarked images where a mark was found: {clean}/{images.Count}"));
var render = Median(renderTimes);
var embed = Median(embedTimes);
var check = Median(checkTimes);
Console.WriteLine(FormattableString.Invariant($"512x512: render (tiny model, 20 steps) median {render:F1} ms; embed median {embed:F2} ms; decode mean {decodeMs:F2} ms; embed/render {embed / render:F4}"));
Console.WriteLine(FormattableString.Invariant($"512x512: safety check (tiny checker, session loaded) median {check:F2} ms; check/render {check / render:F4}"));
Console.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}");

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted[sorted.Count / 2];
}

static RgbImage Smooth(int width, int height, int phase)
{
    var pixels = new byte[width * height * 3];
    for (var y = 0; y < height; y++)
    {
        for (var x = 0; x < width; x++)
        {
            var i = 3 * (y * width + x);
            pixels[i] = (byte)Math.Clamp(128 + 60 * Math.Sin((x + 13 * phase) / 37.0) + 30 * Math.Cos(y / 23.0), 0, 255);
            pixels[i + 1] = (byte)Math.Clamp(90 + 0.3 * x + 20 * Math.Sin((x + y) / (29.0 + phase)), 0, 255);
            pixels[i + 2] = (byte)Math.Clamp(200 - 0.3 * y + 25 * Math.Cos(x / 19.0), 0, 255);
        }
    }

    return new RgbImage(width, height, pixels);
}
