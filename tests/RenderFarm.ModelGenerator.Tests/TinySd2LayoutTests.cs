using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

namespace RenderFarm.ModelGenerator.Tests;

/// <summary>The tiny model in SD 2.x's layout: what makes it SD 2.x rather than SD 1.x, checked in its files and graphs.</summary>
public sealed class TinySd2LayoutTests : IDisposable
{
    private static readonly TinyModelOptions Sd2 = new(Family: TinyFamily.StableDiffusion2);
    private readonly string _root = Directory.CreateTempSubdirectory("renderfarm-tiny-sd2-layout-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Its_scheduler_predicts_v_and_its_manifest_names_the_kind()
    {
        var dir = TestModels.EnsureTiny(Path.Combine(_root, "tiny-sd2"), Sd2);

        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "model_index.json")));
        index.RootElement.GetProperty("scheduler")[1].GetString().ShouldBe("DDIMScheduler");
        using var scheduler = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "scheduler", "scheduler_config.json")));
        scheduler.RootElement.GetProperty("prediction_type").GetString().ShouldBe("v_prediction");
        scheduler.RootElement.GetProperty("beta_schedule").GetString().ShouldBe("scaled_linear");
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, ModelNames.ManifestFile)));
        manifest.RootElement.GetProperty("kind").GetString().ShouldBe("tiny-sd2");
    }

    [Fact]
    public void Its_text_encoder_is_wider_uses_exact_gelu_and_the_unet_reads_that_width()
    {
        var sd2 = TestModels.EnsureTiny(Path.Combine(_root, "tiny-sd2"), Sd2);
        var sd1 = TestModels.EnsureTiny(Path.Combine(_root, "tiny"));

        using var sd2Text = Ort.Open(sd2, ModelNames.TextEncoderFile);
        using var sd1Text = Ort.Open(sd1, ModelNames.TextEncoderFile);
        using var sd2Unet = Ort.Open(sd2, ModelNames.UnetFile);
        Width(sd2Text.OutputMetadata[ModelNames.LastHiddenState]).ShouldBe(96);
        Width(sd1Text.OutputMetadata[ModelNames.LastHiddenState]).ShouldBe(64);
        Width(sd2Unet.InputMetadata[ModelNames.EncoderHiddenStates]).ShouldBe(96);

        // OpenCLIP's exact GELU is an Erf in the graph; CLIP's quick-GELU is x·σ(1.702x), with no Erf.
        Operators(sd2, ModelNames.TextEncoderFile).ShouldContain("Erf");
        Operators(sd1, ModelNames.TextEncoderFile).ShouldNotContain("Erf");
    }

    [Fact]
    public void Two_generations_are_byte_identical_and_differ_from_the_sd1_model()
    {
        string a = Path.Combine(_root, "a"), b = Path.Combine(_root, "b"), sd1 = Path.Combine(_root, "sd1");
        TestModels.WriteTiny(a, Sd2);
        TestModels.WriteTiny(b, Sd2);
        TestModels.WriteTiny(sd1);

        LayoutTests.ShouldBeIdenticalTrees(a, b);
        File.ReadAllBytes(Path.Combine(a, ModelNames.TextEncoderFile)).ShouldNotBe(File.ReadAllBytes(Path.Combine(sd1, ModelNames.TextEncoderFile)));
    }

    private static int Width(NodeMetadata metadata) => metadata.Dimensions[^1];

    private static HashSet<string> Operators(string directory, string file) =>
        [.. Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(directory, file))).Graph.Node.Select(n => n.OpType)];
}
