using System.Text.Json;

namespace RenderFarm.ModelGenerator.Tests;

public sealed class LayoutTests : IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "renderfarm-layout-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Oracle_directory_has_the_diffusers_onnx_layout()
    {
        string dir = TestModels.EnsureOracle(Path.Combine(root, "oracle"));

        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "model_index.json")));
        var r = index.RootElement;
        r.GetProperty("_class_name").GetString().ShouldBe("OnnxStableDiffusionPipeline");
        Pair(r, "scheduler").ShouldBe(["diffusers", "PNDMScheduler"]);
        foreach (string part in new[] { "text_encoder", "unet", "vae_decoder", "vae_encoder" })
        {
            Pair(r, part).ShouldBe(["diffusers", "OnnxRuntimeModel"]);
            File.Exists(Path.Combine(dir, part, "model.onnx")).ShouldBeTrue();
        }

        Pair(r, "tokenizer").ShouldBe(["transformers", "CLIPTokenizer"]);
        Pair(r, "safety_checker").ShouldBe([null, null]);
        Pair(r, "feature_extractor").ShouldBe([null, null]);
        r.GetProperty("requires_safety_checker").GetBoolean().ShouldBeFalse();

        using var scheduler = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "scheduler", "scheduler_config.json")));
        var s = scheduler.RootElement;
        s.GetProperty("_class_name").GetString().ShouldBe("PNDMScheduler");
        s.GetProperty("beta_schedule").GetString().ShouldBe("scaled_linear");
        s.GetProperty("beta_start").GetDouble().ShouldBe(0.00085);
        s.GetProperty("beta_end").GetDouble().ShouldBe(0.012);
        s.GetProperty("num_train_timesteps").GetInt32().ShouldBe(1000);
        s.GetProperty("steps_offset").GetInt32().ShouldBe(1);
        s.GetProperty("skip_prk_steps").GetBoolean().ShouldBeTrue();
        s.GetProperty("set_alpha_to_one").GetBoolean().ShouldBeFalse();
        s.GetProperty("clip_sample").GetBoolean().ShouldBeFalse();
        s.GetProperty("timestep_spacing").GetString().ShouldBe("leading");

        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, ModelNames.ManifestFile)));
        manifest.RootElement.GetProperty("kind").GetString().ShouldBe("oracle");
        manifest.RootElement.GetProperty("generatorVersion").GetString().ShouldBe(TestModels.GeneratorVersion);
        manifest.RootElement.GetProperty("name").GetString().ShouldBe("renderfarm-oracle");
    }

    [Fact]
    public void Tokenizer_is_a_byte_level_clip_vocabulary_without_merges()
    {
        string dir = TestModels.EnsureOracle(Path.Combine(root, "oracle"));
        string tokenizer = Path.Combine(dir, "tokenizer");

        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(tokenizer, "vocab.json")))!;

        vocab.Count.ShouldBe(514);
        vocab.Values.Order().ShouldBe(Enumerable.Range(0, 514));
        vocab["!"].ShouldBe(0);
        vocab["a"].ShouldBe('a' - '!');
        vocab["a</w>"].ShouldBe(256 + ('a' - '!'));
        vocab["Ā"].ShouldBe(188); // byte 0: first of the 68 remapped bytes, after 188 printable ones
        vocab["Ġ"].ShouldBe(188 + 32); // the space byte
        vocab["<|startoftext|>"].ShouldBe(512);
        vocab["<|endoftext|>"].ShouldBe(513);
        File.ReadAllText(Path.Combine(tokenizer, "merges.txt")).ShouldBe("#version: 0.2\n");
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(tokenizer, "tokenizer_config.json")));
        config.RootElement.GetProperty("pad_token").GetString().ShouldBe("<|endoftext|>");
        config.RootElement.GetProperty("model_max_length").GetInt32().ShouldBe(77);
        File.Exists(Path.Combine(tokenizer, "special_tokens_map.json")).ShouldBeTrue();
    }

    [Fact]
    public void Two_oracle_generations_are_byte_identical()
    {
        TestModels.WriteOracle(Path.Combine(root, "a"));
        TestModels.WriteOracle(Path.Combine(root, "b"));

        ShouldBeIdenticalTrees(Path.Combine(root, "a"), Path.Combine(root, "b"));
    }

    [Fact]
    public void Ensure_oracle_keeps_a_current_copy_and_replaces_one_with_other_options()
    {
        string dir = Path.Combine(root, "ensure");
        TestModels.EnsureOracle(dir).ShouldBe(Path.GetFullPath(dir));
        string unet = Path.Combine(dir, ModelNames.UnetFile);
        var firstWrite = File.GetLastWriteTimeUtc(unet);
        File.SetLastWriteTimeUtc(unet, firstWrite.AddDays(-1));

        TestModels.EnsureOracle(dir);
        File.GetLastWriteTimeUtc(unet).ShouldBe(firstWrite.AddDays(-1));

        TestModels.EnsureOracle(dir, new OracleModelOptions(Float16: true));
        File.ReadAllText(Path.Combine(dir, ModelNames.ManifestFile)).ShouldContain("\"float16\": true");
        Directory.GetDirectories(root).ShouldBe([Path.GetFullPath(dir)]);
    }

    internal static void ShouldBeIdenticalTrees(string a, string b)
    {
        var files = Directory.GetFiles(a, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(a, f)).Order(StringComparer.Ordinal).ToArray();
        Directory.GetFiles(b, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(b, f)).Order(StringComparer.Ordinal).ShouldBe(files);
        foreach (string file in files)
        {
            File.ReadAllBytes(Path.Combine(b, file)).SequenceEqual(File.ReadAllBytes(Path.Combine(a, file))).ShouldBeTrue(file);
        }
    }

    private static string?[] Pair(JsonElement root, string name) =>
        root.GetProperty(name).EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Null ? null : e.GetString()).ToArray();
}
