using Microsoft.ML.OnnxRuntime;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Randomness;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.Diffusion.Tokenizers;
using RenderFarm.ModelGenerator;

namespace RenderFarm.Diffusion.Tests.Models;

/// <summary>The tiny SDXL-layout model, generated once.</summary>
public sealed class TinySdxlModels : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("renderfarm-tiny-sdxl-").FullName;

    public TinySdxlModels() =>
        Sdxl = TestModels.EnsureTiny(Path.Combine(_root, "tiny-sdxl"), new TinyModelOptions(Family: TinyFamily.StableDiffusionXL));

    public string Sdxl { get; }

    /// <summary>A copy of the model folder, changed by <paramref name="edit"/>.</summary>
    public string Copy(string name, Action<string> edit)
    {
        var target = Path.Combine(_root, name);
        foreach (var file in Directory.EnumerateFiles(Sdxl, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(target, Path.GetRelativePath(Sdxl, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy, overwrite: true);
        }

        edit(target);
        return target;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}

/// <summary>
/// SDXL on the tiny model in its layout. The conditioning is checked against an independent computation with raw
/// ONNX Runtime sessions that follows diffusers' StableDiffusionXLPipeline: both encoders' penultimate hidden states
/// concatenated, the pooled text_embeds from encoder 2, time_ids = (orig h, orig w, crop top, crop left, target h,
/// target w), and the unconditional half first.
/// </summary>
public sealed class TinySdxlTests(TinySdxlModels models) : IClassFixture<TinySdxlModels>
{
    private const string Prompt = "a red fox in the snow";
    private const string Negative = "blurry";

    // Not square, so a height/width swap in time_ids changes them.
    private const int Width = 96;
    private const int Height = 64;

    [Fact]
    public void The_folder_reads_as_sdxl_trained_at_1024_with_its_vae_scaling()
    {
        var folder = ModelFolder.Open(models.Sdxl);

        folder.Family.ShouldBe(ModelFamily.StableDiffusionXL);
        folder.DefaultImageSide.ShouldBe(1024);
        folder.LatentScalingFactor.ShouldBe(0.13025f);
        folder.ForceZerosForEmptyPrompt.ShouldBeTrue();
        folder.Scheduler.PredictionType.ShouldBe("epsilon");
    }

    [Fact]
    public void An_sdxl_folder_without_its_second_encoder_is_refused_naming_it()
    {
        var broken = models.Copy("no-encoder-2", dir => Directory.Delete(Path.Combine(dir, "text_encoder_2"), recursive: true));

        var error = Should.Throw<ModelFormatException>(() => ModelFolder.Open(broken));

        error.Message.ShouldContain("text_encoder_2");
        error.Message.ShouldContain("StableDiffusionXLPipeline");
    }

    [Fact]
    public void An_sdxl_unet_in_a_folder_read_as_sd_is_refused_naming_the_missing_encoder()
    {
        var mislabelled = models.Copy("sdxl-unet-as-sd", dir =>
        {
            Directory.Delete(Path.Combine(dir, "text_encoder_2"), recursive: true);
            var index = Path.Combine(dir, "model_index.json");
            File.WriteAllText(index, File.ReadAllText(index).Replace("StableDiffusionXLPipeline", "OnnxStableDiffusionPipeline", StringComparison.Ordinal));
        });
        using var pipeline = StableDiffusionPipeline.Open(mislabelled);

        pipeline.Model.Family.ShouldBe(ModelFamily.StableDiffusion);
        var error = Should.Throw<ModelFormatException>(() => Render(pipeline, SamplerNames.Euler, seed: 1));

        error.Message.ShouldContain("text_embeds");
        error.Message.ShouldContain("text_encoder_2");
    }

    [Fact]
    public void Prompt_conditioning_concatenates_both_penultimate_states_pools_from_encoder_2_and_sizes_height_first()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Sdxl);

        var (conditioning, _) = pipeline.EncodePromptsXl([new ImageSpec(Prompt, Negative, 1)], useGuidance: true, Width, Height);

        var expected = Independent.Conditioning(models.Sdxl, [Negative, Prompt], Independent.Source.Penultimate, Independent.Source.TextEmbeds);
        conditioning.HiddenWidth.ShouldBe(64 + 128);
        conditioning.TextEmbedsWidth.ShouldBe(128);
        conditioning.Hidden.ShouldBe(expected.Hidden);
        conditioning.TextEmbeds.ShouldBe(expected.Pooled);
        conditioning.TimeIds.ShouldBe([64f, 96f, 0f, 0f, 64f, 96f, 64f, 96f, 0f, 0f, 64f, 96f]);
        // The penultimate layer is not the last hidden state, nor is the projected pooled output the raw pooled row.
        var last = Independent.Conditioning(models.Sdxl, [Negative, Prompt], Independent.Source.LastHiddenState, Independent.Source.UnprojectedPooled);
        last.Hidden.ShouldNotBe(expected.Hidden);
        last.Pooled.ShouldNotBe(expected.Pooled);
    }

    [Fact]
    public void An_absent_negative_prompt_is_zeros_when_the_model_forces_them_else_the_encoded_empty_prompt()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Sdxl);
        var keepEmpty = models.Copy("encode-empty", dir =>
        {
            var index = Path.Combine(dir, "model_index.json");
            File.WriteAllText(index, File.ReadAllText(index).Replace("\"force_zeros_for_empty_prompt\": true", "\"force_zeros_for_empty_prompt\": false", StringComparison.Ordinal));
        });
        using var encodesEmpty = StableDiffusionPipeline.Open(keepEmpty);

        var (zeroed, _) = pipeline.EncodePromptsXl([new ImageSpec(Prompt, "", 1)], useGuidance: true, Width, Height);
        var (encoded, _) = encodesEmpty.EncodePromptsXl([new ImageSpec(Prompt, "", 1)], useGuidance: true, Width, Height);

        var rowLength = zeroed.Hidden.Length / 2;
        zeroed.Hidden.AsSpan(0, rowLength).ToArray().ShouldAllBe(v => v == 0f);
        zeroed.TextEmbeds!.AsSpan(0, 128).ToArray().ShouldAllBe(v => v == 0f);
        zeroed.Hidden.AsSpan(rowLength).ToArray().ShouldBe(encoded.Hidden.AsSpan(rowLength).ToArray());
        var expectedEmpty = Independent.Conditioning(models.Sdxl, [""], Independent.Source.Penultimate, Independent.Source.TextEmbeds);
        encoded.Hidden.AsSpan(0, rowLength).ToArray().ShouldBe(expectedEmpty.Hidden);
        encoded.TextEmbeds!.AsSpan(0, 128).ToArray().ShouldBe(expectedEmpty.Pooled);
    }

    [Fact]
    public void Euler_steps_render_what_diffusers_sdxl_conditioning_gives_and_not_what_a_wrong_one_would()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Sdxl);
        var rendered = pipeline.Generate(new GenerationRequest
        {
            Images = [new ImageSpec(Prompt, Negative, 5)],
            Width = Width,
            Height = Height,
            Steps = Independent.Steps,
            GuidanceScale = Independent.Guidance,
            Sampler = SamplerNames.Euler,
        }, null, CancellationToken.None).Images[0].Image;

        var diffusers = Independent.EulerSteps(models.Sdxl, Prompt, Negative, 5, Width, Height);
        var swappedSizes = Independent.EulerSteps(models.Sdxl, Prompt, Negative, 5, Width, Height, widthFirst: true);
        var rawPooled = Independent.EulerSteps(models.Sdxl, Prompt, Negative, 5, Width, Height, pooled: Independent.Source.UnprojectedPooled);
        var lastLayer = Independent.EulerSteps(models.Sdxl, Prompt, Negative, 5, Width, Height, hidden: Independent.Source.LastHiddenState);

        MaxDifference(rendered, diffusers).ShouldBeLessThanOrEqualTo(1);
        // The tiny UNet's output depends measurably on each: a render with any of these mistakes would fail above.
        MeanDifference(swappedSizes, diffusers).ShouldBeGreaterThan(1.0);
        MeanDifference(rawPooled, diffusers).ShouldBeGreaterThan(1.0);
        MeanDifference(lastLayer, diffusers).ShouldBeGreaterThan(1.0);
    }

    [Theory]
    [InlineData(SamplerNames.Euler)]
    [InlineData(SamplerNames.DpmPlusPlus2M)]
    public void It_renders_deterministically_by_seed_and_records_the_model(string sampler)
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Sdxl);

        var first = Render(pipeline, sampler, seed: 11);
        var again = Render(pipeline, sampler, seed: 11);
        var otherSeed = Render(pipeline, sampler, seed: 12);

        again.Image.Pixels.ShouldBe(first.Image.Pixels);
        otherSeed.Image.Pixels.ShouldNotBe(first.Image.Pixels);
        var parameters = GenerationParameters.Parse(PngCodec.ReadTextChunks(first.ToPng())["parameters"]);
        (parameters.Model, parameters.Seed, parameters.Width, parameters.Height).ShouldBe(("tiny-sdxl", 11UL, 64, 64));
    }

    [Fact]
    public void Sequential_offload_and_batch_split_render_the_resident_image()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Sdxl);
        var request = new GenerationRequest
        {
            Images = [new ImageSpec(Prompt, Negative, 3), new ImageSpec("a blue boat", "", 4)],
            Width = 64,
            Height = 64,
            Steps = 3,
            GuidanceScale = 6,
            Sampler = SamplerNames.Euler,
        };

        var resident = pipeline.Generate(request, null, CancellationToken.None);
        var offloaded = pipeline.Generate(request with
        {
            Memory = new MemoryStrategy { Strategies = MemoryStrategies.Sequential | MemoryStrategies.BatchSplit, UnetRowsPerCall = 1 },
        }, null, CancellationToken.None);

        for (var i = 0; i < 2; i++)
        {
            MaxDifference(offloaded.Images[i].Image, resident.Images[i].Image).ShouldBeLessThanOrEqualTo(1, $"image {i}");
        }

        pipeline.TextEncoder2!.Component.IsLoaded.ShouldBeFalse();
    }

    private static GeneratedImage Render(StableDiffusionPipeline pipeline, string sampler, ulong seed) =>
        pipeline.Generate(new GenerationRequest
        {
            Images = [new ImageSpec(Prompt, Negative, seed)],
            Width = 64,
            Height = 64,
            Steps = 4,
            GuidanceScale = 7.5,
            Sampler = sampler,
        }, null, CancellationToken.None).Images[0];

    private static int MaxDifference(RgbImage a, RgbImage b) => a.Pixels.Zip(b.Pixels, (x, y) => Math.Abs(x - y)).Max();

    private static double MeanDifference(RgbImage a, RgbImage b) => a.Pixels.Zip(b.Pixels, (x, y) => Math.Abs(x - y)).Average();

    /// <summary>diffusers' SDXL conditioning and a few Euler steps, on raw ONNX Runtime sessions.</summary>
    private static class Independent
    {
        public const int Steps = 4;
        public const double Guidance = 5;

        public enum Source
        {
            Penultimate,
            LastHiddenState,
            TextEmbeds,
            UnprojectedPooled,
        }

        public static (float[] Hidden, float[] Pooled) Conditioning(string model, string[] prompts, Source hidden, Source pooled)
        {
            var ids1 = Tokens(Path.Combine(model, "tokenizer"), prompts);
            var tokenizer2 = ClipTokenizer.FromFolder(Path.Combine(model, "tokenizer_2"));
            tokenizer2.PadId.ShouldNotBe(tokenizer2.EosId, "OpenCLIP's tokenizer pads with '!'");
            var ids2 = Tokens(Path.Combine(model, "tokenizer_2"), prompts);
            // Two layers: hidden_states.0 is the embeddings, .1 the penultimate layer (transformers' hidden_states[-2]).
            var hiddenName = hidden == Source.Penultimate ? "hidden_states.1" : "last_hidden_state";
            var h1 = Run(Path.Combine(model, "text_encoder", "model.onnx"), ids1, prompts.Length, hiddenName)[0];
            var encoder2 = Run(Path.Combine(model, "text_encoder_2", "model.onnx"), ids2, prompts.Length, hiddenName, "text_embeds", "last_hidden_state");
            var h2 = encoder2[0];
            var result = new float[prompts.Length * 77 * 192];
            for (var row = 0; row < prompts.Length; row++)
            {
                for (var t = 0; t < 77; t++)
                {
                    for (var c = 0; c < 64; c++)
                    {
                        result[(((row * 77) + t) * 192) + c] = h1[(((row * 77) + t) * 64) + c];
                    }

                    for (var c = 0; c < 128; c++)
                    {
                        result[(((row * 77) + t) * 192) + 64 + c] = h2[(((row * 77) + t) * 128) + c];
                    }
                }
            }

            float[] pooledValues;
            if (pooled == Source.TextEmbeds)
            {
                pooledValues = encoder2[1];
            }
            else
            {
                // The final-LayerNorm row of each prompt's end token, before text_projection.
                pooledValues = new float[prompts.Length * 128];
                for (var row = 0; row < prompts.Length; row++)
                {
                    var eos = Array.IndexOf(ids2, tokenizer2.EosId, row * 77) - (row * 77);
                    encoder2[2].AsSpan((((row * 77) + eos) * 128), 128).CopyTo(pooledValues.AsSpan(row * 128));
                }
            }

            return (result, pooledValues);
        }

        public static RgbImage EulerSteps(string model, string prompt, string negative, ulong seed, int width, int height,
            bool widthFirst = false, Source hidden = Source.Penultimate, Source pooled = Source.TextEmbeds)
        {
            var (context, textEmbeds) = Conditioning(model, [negative, prompt], hidden, pooled);
            float[] sizes = widthFirst ? [width, height, 0, 0, width, height] : [height, width, 0, 0, height, width];
            float[] timeIds = [.. sizes, .. sizes];

            var folder = ModelFolder.Open(model);
            var scheduler = SchedulerFactory.Create(SamplerNames.Euler, folder.Scheduler);
            scheduler.SetTimesteps(Steps);
            int lh = height / 8, lw = width / 8, length = 4 * lh * lw;
            var latents = new float[length];
            new TorchCpuGenerator(seed).FillNormal(latents);
            for (var i = 0; i < length; i++)
            {
                latents[i] *= scheduler.InitNoiseSigma;
            }

            var scaled = new float[length];
            var guided = new float[length];
            using var session = new InferenceSession(Path.Combine(model, "unet", "model.onnx"));
            using var states = OrtValue.CreateTensorValueFromMemory(context, [2, 77, 192]);
            using var embeds = OrtValue.CreateTensorValueFromMemory(textEmbeds, [2, 128]);
            using var ids = OrtValue.CreateTensorValueFromMemory(timeIds, [2, 6]);
            using var runOptions = new RunOptions();
            for (var step = 0; step < Steps; step++)
            {
                scheduler.ScaleModelInput(latents, scaled, step);
                using var sample = OrtValue.CreateTensorValueFromMemory([.. scaled, .. scaled], [2, 4, lh, lw]);
                using var timestep = OrtValue.CreateTensorValueFromMemory(new[] { (float)scheduler.Timesteps[step] }, []);
                using var outputs = session.Run(runOptions, ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"],
                    [sample, timestep, states, embeds, ids], ["out_sample"]);
                var prediction = outputs[0].GetTensorDataAsSpan<float>();
                for (var i = 0; i < length; i++)
                {
                    // Classifier-free guidance, unconditional half first.
                    guided[i] = prediction[i] + ((float)Guidance * (prediction[length + i] - prediction[i]));
                }

                scheduler.Step(guided, step, latents, new float[length]);
            }

            for (var i = 0; i < length; i++)
            {
                latents[i] /= 0.13025f;
            }

            using var decoder = new InferenceSession(Path.Combine(model, "vae_decoder", "model.onnx"));
            using var latent = OrtValue.CreateTensorValueFromMemory(latents, [1, 4, lh, lw]);
            using var decoded = decoder.Run(runOptions, ["latent_sample"], [latent], ["sample"]);
            return RgbImage.FromModelPlanes(decoded[0].GetTensorDataAsSpan<float>(), width, height);
        }

        private static int[] Tokens(string tokenizerDirectory, string[] prompts)
        {
            var tokenizer = ClipTokenizer.FromFolder(tokenizerDirectory);
            return [.. prompts.SelectMany(p => tokenizer.Encode(p).Ids)];
        }

        private static float[][] Run(string path, int[] ids, int rows, params string[] outputNames)
        {
            using var session = new InferenceSession(path);
            using var input = OrtValue.CreateTensorValueFromMemory(ids, [rows, 77]);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, ["input_ids"], [input], outputNames);
            return [.. outputs.Select(o => o.GetTensorDataAsSpan<float>().ToArray())];
        }
    }
}
