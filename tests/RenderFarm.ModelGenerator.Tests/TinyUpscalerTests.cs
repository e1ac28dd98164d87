using System.Text.Json;
using RenderFarm.ModelGenerator.Upscaler;

namespace RenderFarm.ModelGenerator.Tests;

/// <summary>The tiny upscaler's files, determinism, and its graph against the closed form on the raw ONNX session.</summary>
public sealed class TinyUpscalerTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("renderfarm-upscaler-gen-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void The_graph_is_the_closed_form_with_dynamic_sizes(int scale)
    {
        var dir = Path.Combine(root, $"x{scale}");
        TestModels.WriteTinyUpscaler(dir, new TinyUpscalerOptions(scale));
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, TinyUpscaler.ConfigFile)));
        config.RootElement.GetProperty("scale").GetInt32().ShouldBe(scale);
        config.RootElement.GetProperty("kind").GetString().ShouldBe("tiny-upscaler");
        config.RootElement.GetProperty("memory").GetProperty("model").GetProperty("weightBytes").GetInt64().ShouldBeGreaterThan(0);

        using var session = Ort.Open(dir, TinyUpscaler.ModelFile);
        foreach (var (h, w) in new[] { (3, 5), (8, 2) })
        {
            var input = Enumerable.Range(0, 3 * h * w).Select(i => (i * 37 % 256) / 255f).ToArray();
            var (data, shape) = Ort.Run(session, Ort.Floats(TinyUpscaler.InputName, input, 1, 3, h, w))[TinyUpscaler.OutputName];
            shape.ShouldBe([1, 3, h * scale, w * scale]);
            for (var c = 0; c < 3; c++)
            {
                for (var y = 0; y < h * scale; y++)
                {
                    for (var x = 0; x < w * scale; x++)
                    {
                        var expected = 0.75 * input[c * h * w + (y / scale) * w + x / scale] + TinyUpscaler.OffsetBytes(scale, y % scale, x % scale) / 255;
                        data[c * h * w * scale * scale + y * w * scale + x].ShouldBe((float)expected, 2e-6f);
                    }
                }
            }
        }
    }

    [Fact]
    public void Two_generations_are_byte_identical_and_a_scale_of_3_is_refused()
    {
        TestModels.WriteTinyUpscaler(Path.Combine(root, "a"));
        TestModels.WriteTinyUpscaler(Path.Combine(root, "b"));

        LayoutTests.ShouldBeIdenticalTrees(Path.Combine(root, "a"), Path.Combine(root, "b"));
        Should.Throw<ArgumentOutOfRangeException>(() => TestModels.WriteTinyUpscaler(Path.Combine(root, "c"), new TinyUpscalerOptions(3)));
    }
}
