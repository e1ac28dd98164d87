using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Google.Protobuf;
using RenderFarm.Onnx;

namespace RenderFarm.ModelGenerator;

/// <summary>
/// Writes the non-ONNX parts of the diffusers/Optimum layout (model_index.json, tokenizer, scheduler) and our manifest.
/// Everything is written with fixed formatting and "\n" line endings so two generations are byte-identical.
/// </summary>
internal static class PipelineFiles
{
    public const string StartOfText = "<|startoftext|>";
    public const string EndOfText = "<|endoftext|>";

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        NewLine = "\n",
        // Keeps vocab.json readable (byte characters such as "Ġ" stay literal); quotes and backslashes are still escaped.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void WriteOnnx(string directory, string relativePath, ModelProto model)
    {
        string path = Path.Combine(directory, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, model.ToByteArray());
    }

    public static void WriteCommon(string directory, TinyFamily family = TinyFamily.StableDiffusion1)
    {
        if (family == TinyFamily.StableDiffusionXL)
        {
            WriteXl(directory);
            return;
        }

        var sd2 = family == TinyFamily.StableDiffusion2;
        WriteJson(directory, "model_index.json", w =>
        {
            w.WriteString("_class_name", "OnnxStableDiffusionPipeline");
            w.WriteString("_diffusers_version", "0.30.0");
            WritePair(w, "feature_extractor", null, null);
            w.WriteBoolean("requires_safety_checker", false);
            WritePair(w, "safety_checker", null, null);
            WritePair(w, "scheduler", "diffusers", sd2 ? "DDIMScheduler" : "PNDMScheduler");
            WritePair(w, "text_encoder", "diffusers", "OnnxRuntimeModel");
            WritePair(w, "tokenizer", "transformers", "CLIPTokenizer");
            WritePair(w, "unet", "diffusers", "OnnxRuntimeModel");
            WritePair(w, "vae_decoder", "diffusers", "OnnxRuntimeModel");
            WritePair(w, "vae_encoder", "diffusers", "OnnxRuntimeModel");
        });

        // Stable Diffusion 1.x's scheduler configuration, as shipped with runwayml/stable-diffusion-v1-5; SD 2.x 768-v
        // (stabilityai/stable-diffusion-2-1) ships DDIM's class with the same schedule and v-prediction.
        WriteJson(directory, "scheduler/scheduler_config.json", w =>
        {
            w.WriteString("_class_name", sd2 ? "DDIMScheduler" : "PNDMScheduler");
            w.WriteString("_diffusers_version", "0.30.0");
            w.WriteNumber("beta_end", 0.012);
            w.WriteString("beta_schedule", "scaled_linear");
            w.WriteNumber("beta_start", 0.00085);
            w.WriteBoolean("clip_sample", false);
            w.WriteNumber("num_train_timesteps", 1000);
            w.WriteString("prediction_type", sd2 ? "v_prediction" : "epsilon");
            w.WriteBoolean("set_alpha_to_one", false);
            w.WriteBoolean("skip_prk_steps", true);
            w.WriteNumber("steps_offset", 1);
            w.WriteString("timestep_spacing", "leading");
            w.WriteNull("trained_betas");
        });

        WriteTokenizer(Path.Combine(directory, "tokenizer"));
    }

    /// <summary>
    /// SDXL base's non-ONNX files: stabilityai/stable-diffusion-xl-base-1.0's model_index.json (with
    /// <c>force_zeros_for_empty_prompt</c>, which makes an absent negative prompt zeros) and scheduler config
    /// (EulerDiscrete, the SD schedule, ε-prediction), its VAE scaling factor 0.13025, and two tokenizers: the second,
    /// OpenCLIP's, pads with "!" where CLIP's pads with its end token.
    /// </summary>
    private static void WriteXl(string directory)
    {
        WriteJson(directory, "model_index.json", w =>
        {
            w.WriteString("_class_name", "StableDiffusionXLPipeline");
            w.WriteString("_diffusers_version", "0.30.0");
            w.WriteBoolean("force_zeros_for_empty_prompt", true);
            WritePair(w, "scheduler", "diffusers", "EulerDiscreteScheduler");
            WritePair(w, "text_encoder", "diffusers", "OnnxRuntimeModel");
            WritePair(w, "text_encoder_2", "diffusers", "OnnxRuntimeModel");
            WritePair(w, "tokenizer", "transformers", "CLIPTokenizer");
            WritePair(w, "tokenizer_2", "transformers", "CLIPTokenizer");
            WritePair(w, "unet", "diffusers", "OnnxRuntimeModel");
            WritePair(w, "vae_decoder", "diffusers", "OnnxRuntimeModel");
            WritePair(w, "vae_encoder", "diffusers", "OnnxRuntimeModel");
        });

        WriteJson(directory, "scheduler/scheduler_config.json", w =>
        {
            w.WriteString("_class_name", "EulerDiscreteScheduler");
            w.WriteString("_diffusers_version", "0.30.0");
            w.WriteNumber("beta_end", 0.012);
            w.WriteString("beta_schedule", "scaled_linear");
            w.WriteNumber("beta_start", 0.00085);
            w.WriteBoolean("clip_sample", false);
            w.WriteString("interpolation_type", "linear");
            w.WriteNumber("num_train_timesteps", 1000);
            w.WriteString("prediction_type", "epsilon");
            w.WriteNumber("sample_max_value", 1.0);
            w.WriteBoolean("set_alpha_to_one", false);
            w.WriteBoolean("skip_prk_steps", true);
            w.WriteNumber("steps_offset", 1);
            w.WriteString("timestep_spacing", "leading");
            w.WriteNull("trained_betas");
            w.WriteBoolean("use_karras_sigmas", false);
        });

        foreach (var vae in new[] { "vae_decoder", "vae_encoder" })
        {
            WriteJson(directory, $"{vae}/config.json", w =>
            {
                w.WriteString("_class_name", "AutoencoderKL");
                w.WriteNumber("latent_channels", 4);
                w.WriteNumber("scaling_factor", 0.13025);
            });
        }

        WriteTokenizer(Path.Combine(directory, "tokenizer"));
        WriteTokenizer(Path.Combine(directory, "tokenizer_2"), padToken: "!");
    }

    public static void WriteManifest(string directory, string manifestJson) =>
        WriteText(Path.Combine(directory, ModelNames.ManifestFile), manifestJson);

    public static string Manifest(string name, string kind, Action<Utf8JsonWriter>? extra = null) =>
        ToJson(w =>
        {
            w.WriteString("name", name);
            w.WriteString("kind", kind);
            w.WriteString("generatorVersion", TestModels.GeneratorVersion);
            extra?.Invoke(w);
        });

    /// <summary>
    /// CLIP's byte-to-character table (GPT-2's bytes_to_unicode): printable Latin-1 bytes map to themselves, the
    /// other 68 bytes to U+0100 onwards, in the order CLIP lists them in its vocabulary.
    /// </summary>
    public static IReadOnlyList<string> ByteCharacters()
    {
        var bytes = new List<int>();
        bytes.AddRange(Enumerable.Range('!', '~' - '!' + 1));
        bytes.AddRange(Enumerable.Range('¡', '¬' - '¡' + 1));
        bytes.AddRange(Enumerable.Range('®', 'ÿ' - '®' + 1));
        var characters = bytes.ToList();
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            if (!bytes.Contains(b))
            {
                bytes.Add(b);
                characters.Add(256 + extra++);
            }
        }

        return characters.Select(c => ((char)c).ToString()).ToArray();
    }

    private static void WriteTokenizer(string directory, string padToken = EndOfText)
    {
        // A byte-level CLIP vocabulary without merges: every word tokenizes to its bytes, the last one carrying "</w>".
        var characters = ByteCharacters();
        WriteJson(directory, "vocab.json", w =>
        {
            int id = 0;
            foreach (string c in characters)
            {
                w.WriteNumber(c, id++);
            }

            foreach (string c in characters)
            {
                w.WriteNumber(c + "</w>", id++);
            }

            w.WriteNumber(StartOfText, id++);
            w.WriteNumber(EndOfText, id);
        });
        WriteText(Path.Combine(directory, "merges.txt"), "#version: 0.2\n");
        WriteJson(directory, "tokenizer_config.json", w =>
        {
            w.WriteBoolean("add_prefix_space", false);
            w.WriteString("bos_token", StartOfText);
            w.WriteBoolean("clean_up_tokenization_spaces", true);
            w.WriteBoolean("do_lower_case", true);
            w.WriteString("eos_token", EndOfText);
            w.WriteString("errors", "replace");
            w.WriteNumber("model_max_length", 77);
            w.WriteString("pad_token", padToken);
            w.WriteString("tokenizer_class", "CLIPTokenizer");
            w.WriteString("unk_token", EndOfText);
        });
        WriteJson(directory, "special_tokens_map.json", w =>
        {
            w.WriteString("bos_token", StartOfText);
            w.WriteString("eos_token", EndOfText);
            w.WriteString("pad_token", padToken);
            w.WriteString("unk_token", EndOfText);
        });
    }

    private static void WritePair(Utf8JsonWriter w, string name, string? library, string? type)
    {
        w.WriteStartArray(name);
        WriteNullable(w, library);
        WriteNullable(w, type);
        w.WriteEndArray();
    }

    private static void WriteNullable(Utf8JsonWriter w, string? value)
    {
        if (value is null)
        {
            w.WriteNullValue();
        }
        else
        {
            w.WriteStringValue(value);
        }
    }

    private static void WriteJson(string directory, string relativePath, Action<Utf8JsonWriter> body) =>
        WriteText(Path.Combine(directory, relativePath), ToJson(body));

    private static string ToJson(Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static void WriteText(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text));
    }
}
