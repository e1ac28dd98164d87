using System.Text.Json;

namespace RenderFarm.ModelGenerator.Tests;

/// <summary>
/// The tiny model in SDXL's layout, checked in its files and graphs against what Optimum's SDXL export holds: the
/// tensor names the engine (and any ONNX SDXL pipeline) looks for.
/// </summary>
public sealed class TinySdxlLayoutTests : IDisposable
{
    private static readonly TinyModelOptions Sdxl = new(Family: TinyFamily.StableDiffusionXL);
    private readonly string _root = Directory.CreateTempSubdirectory("renderfarm-tiny-sdxl-layout-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Its_pipeline_files_are_sdxl_bases()
    {
        var dir = TestModels.EnsureTiny(Path.Combine(_root, "tiny-sdxl"), Sdxl);

        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "model_index.json")));
        index.RootElement.GetProperty("_class_name").GetString().ShouldBe("StableDiffusionXLPipeline");
        index.RootElement.GetProperty("force_zeros_for_empty_prompt").GetBoolean().ShouldBeTrue();
        index.RootElement.GetProperty("text_encoder_2")[1].GetString().ShouldBe("OnnxRuntimeModel");
        using var scheduler = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "scheduler", "scheduler_config.json")));
        scheduler.RootElement.GetProperty("_class_name").GetString().ShouldBe("EulerDiscreteScheduler");
        scheduler.RootElement.GetProperty("beta_schedule").GetString().ShouldBe("scaled_linear");
        scheduler.RootElement.GetProperty("prediction_type").GetString().ShouldBe("epsilon");
        using var vae = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "vae_decoder", "config.json")));
        vae.RootElement.GetProperty("scaling_factor").GetDouble().ShouldBe(0.13025);
        using var tokenizer2 = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer_2", "special_tokens_map.json")));
        tokenizer2.RootElement.GetProperty("pad_token").GetString().ShouldBe("!");
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, ModelNames.ManifestFile)));
        manifest.RootElement.GetProperty("kind").GetString().ShouldBe("tiny-sdxl");
    }

    [Fact]
    public void Its_encoders_and_unet_have_optimums_sdxl_tensor_names_and_widths()
    {
        var dir = TestModels.EnsureTiny(Path.Combine(_root, "tiny-sdxl"), Sdxl);

        using var text1 = Ort.Open(dir, ModelNames.TextEncoderFile);
        using var text2 = Ort.Open(dir, ModelNames.TextEncoder2File);
        using var unet = Ort.Open(dir, ModelNames.UnetFile);

        text1.OutputNames.ShouldBe(["last_hidden_state", "pooler_output", "hidden_states.0", "hidden_states.1", "hidden_states.2"]);
        text2.OutputNames.ShouldBe(["text_embeds", "last_hidden_state", "hidden_states.0", "hidden_states.1", "hidden_states.2"]);
        text1.OutputMetadata["hidden_states.1"].Dimensions[^1].ShouldBe(64);
        text2.OutputMetadata["hidden_states.1"].Dimensions[^1].ShouldBe(128);
        text2.OutputMetadata["text_embeds"].Dimensions[^1].ShouldBe(128);
        unet.InputNames.ShouldBe(["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"]);
        unet.InputMetadata["encoder_hidden_states"].Dimensions[^1].ShouldBe(64 + 128);
        unet.InputMetadata["text_embeds"].Dimensions[^1].ShouldBe(128);
        unet.InputMetadata["time_ids"].Dimensions[^1].ShouldBe(6);
        // A float scalar, as Optimum's SDXL export declares it.
        unet.InputMetadata["timestep"].Dimensions.ShouldBeEmpty();
        unet.InputMetadata["timestep"].ElementDataType.ShouldBe(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float);
    }

    [Fact]
    public void Its_unet_has_no_attention_at_full_latent_resolution_as_sdxl_has_none_at_its_first_level()
    {
        var sdxl = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(TestModels.EnsureTiny(Path.Combine(_root, "tiny-sdxl"), Sdxl), ModelNames.UnetFile)));
        var sd1 = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(TestModels.EnsureTiny(Path.Combine(_root, "tiny")), ModelNames.UnetFile)));

        sdxl.Graph.Initializer.ShouldNotContain(n => n.Name.Contains("down_blocks.0/attentions", StringComparison.Ordinal));
        sdxl.Graph.Initializer.ShouldContain(n => n.Name.Contains("down_blocks.1/attentions", StringComparison.Ordinal));
        sdxl.Graph.Initializer.ShouldContain(n => n.Name.Contains("add_embedding", StringComparison.Ordinal));
        sd1.Graph.Initializer.ShouldContain(n => n.Name.Contains("down_blocks.0/attentions", StringComparison.Ordinal));
    }

    [Fact]
    public void Two_generations_are_byte_identical()
    {
        string a = Path.Combine(_root, "a"), b = Path.Combine(_root, "b");
        TestModels.WriteTiny(a, Sdxl);
        TestModels.WriteTiny(b, Sdxl);

        LayoutTests.ShouldBeIdenticalTrees(a, b);
        File.ReadAllBytes(Path.Combine(a, ModelNames.TextEncoderFile)).ShouldNotBe(File.ReadAllBytes(Path.Combine(a, ModelNames.TextEncoder2File)));
    }
}
