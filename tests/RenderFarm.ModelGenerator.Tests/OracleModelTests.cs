using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace RenderFarm.ModelGenerator.Tests;

public sealed class OracleModelTests(OracleFixture models) : IClassFixture<OracleFixture>
{
    private const int D = OracleReference.HiddenSize;
    private const float Scaling = 0.18215f;

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Every_graph_declares_the_exports_names_types_and_shapes(bool float16, bool floatTimestep)
    {
        string dir = models.Variant(float16, floatTimestep);
        var f = float16 ? TensorElementType.Float16 : TensorElementType.Float;

        using (var text = Ort.Open(dir, ModelNames.TextEncoderFile))
        {
            ShouldDeclare(text.InputMetadata, ModelNames.InputIds, TensorElementType.Int32, -1, 77);
            ShouldDeclare(text.OutputMetadata, ModelNames.LastHiddenState, f, -1, 77, D);
            ShouldDeclare(text.OutputMetadata, ModelNames.PoolerOutput, f, -1, D);
            text.InputMetadata[ModelNames.InputIds].SymbolicDimensions[0].ShouldBe(ModelNames.Batch);
        }

        using (var unet = Ort.Open(dir, ModelNames.UnetFile))
        {
            unet.InputMetadata.Keys.ShouldBe([ModelNames.Sample, ModelNames.Timestep, ModelNames.EncoderHiddenStates]);
            ShouldDeclare(unet.InputMetadata, ModelNames.Sample, f, -1, 4, -1, -1);
            ShouldDeclare(unet.InputMetadata, ModelNames.Timestep, floatTimestep ? TensorElementType.Float : TensorElementType.Int64, 1);
            ShouldDeclare(unet.InputMetadata, ModelNames.EncoderHiddenStates, f, -1, 77, D);
            ShouldDeclare(unet.OutputMetadata, ModelNames.OutSample, f, -1, 4, -1, -1);
            unet.InputMetadata[ModelNames.Sample].SymbolicDimensions.ShouldBe([ModelNames.Batch, "", ModelNames.LatentHeight, ModelNames.LatentWidth]);
        }

        using (var decoder = Ort.Open(dir, ModelNames.VaeDecoderFile))
        {
            ShouldDeclare(decoder.InputMetadata, ModelNames.LatentSample, f, -1, 4, -1, -1);
            ShouldDeclare(decoder.OutputMetadata, ModelNames.Sample, f, -1, 3, -1, -1);
        }

        using (var encoder = Ort.Open(dir, ModelNames.VaeEncoderFile))
        {
            ShouldDeclare(encoder.InputMetadata, ModelNames.Sample, f, -1, 3, -1, -1);
            ShouldDeclare(encoder.OutputMetadata, ModelNames.LatentSample, f, -1, 4, -1, -1);
        }
    }

    [Fact]
    public void Every_graph_is_ir_version_8_with_opset_17()
    {
        foreach (string file in new[] { ModelNames.TextEncoderFile, ModelNames.UnetFile, ModelNames.VaeDecoderFile, ModelNames.VaeEncoderFile })
        {
            var model = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(models.Default, file)));
            model.IrVersion.ShouldBe(8);
            model.OpsetImport.ShouldHaveSingleItem().Version.ShouldBe(17);
        }
    }

    [Fact]
    public void Text_encoder_equals_the_reference_and_padding_rows_are_zero()
    {
        var random = new Random(1);
        int[][] prompts = [TestData.RandomPrompt(random, 20), TestData.RandomPrompt(random, 76), TestData.Tokenize("")];
        using var session = Ort.Open(models.Default, ModelNames.TextEncoderFile);

        var outputs = Ort.Run(session, Ort.Int32s(ModelNames.InputIds, prompts.SelectMany(p => p).ToArray(), prompts.Length, 77));

        var hidden = outputs[ModelNames.LastHiddenState];
        hidden.Shape.ShouldBe([prompts.Length, 77, D]);
        var pooled = outputs[ModelNames.PoolerOutput];
        pooled.Shape.ShouldBe([prompts.Length, D]);
        for (int b = 0; b < prompts.Length; b++)
        {
            var expected = OracleReference.TextHidden(prompts[b]);
            var actual = hidden.Data.AsSpan(b * 77 * D, 77 * D);
            ShouldBeClose(actual, expected, absolute: 1e-5f);
            for (int k = 0; k < 77; k++)
            {
                if (prompts[b][k] == TestData.EndOfText)
                {
                    actual.Slice(k * D, D).ToArray().ShouldAllBe(x => x == 0f);
                }
            }

            var mean = Enumerable.Range(0, D).Select(d => Enumerable.Range(0, 77).Sum(k => expected[(k * D) + d]) / 77f).ToArray();
            ShouldBeClose(pooled.Data.AsSpan(b * D, D), mean, absolute: 1e-5f);
        }
    }

    [Fact]
    public void Unet_predicts_the_exact_noise_at_integer_timesteps()
    {
        using var session = Ort.Open(models.Default, ModelNames.UnetFile);
        var (hidden, targets) = TwoPrompts(new Random(2));
        var sample = TestData.Uniform(new Random(3), 2 * 4 * 5 * 7, 3f);

        foreach (long t in new long[] { 0, 1, 37, 500, 998, 999 })
        {
            var outputs = Ort.Run(session,
                Ort.Floats(ModelNames.Sample, sample, 2, 4, 5, 7),
                Ort.Int64s(ModelNames.Timestep, [t], 1),
                Ort.Floats(ModelNames.EncoderHiddenStates, hidden, 2, 77, D));

            var epsilon = outputs[ModelNames.OutSample];
            epsilon.Shape.ShouldBe([2, 4, 5, 7]);
            ShouldBeClose(epsilon.Data, ExpectedNoise(sample, targets, 5 * 7, t), relative: 1e-4f);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Unet_with_a_float_timestep_interpolates_log_sigma_between_training_steps(bool float16)
    {
        using var session = Ort.Open(models.Variant(float16, floatTimestep: true), ModelNames.UnetFile);
        var (hidden, targets) = TwoPrompts(new Random(4));
        var sample = TestData.Uniform(new Random(5), 2 * 4 * 6 * 4, 3f);
        if (float16)
        {
            // The reference must see what the fp16 model sees.
            hidden = Ort.RoundToHalf(hidden);
            sample = Ort.RoundToHalf(sample);
            targets = [OracleReference.TargetLatent(hidden.AsSpan(0, 77 * D)), OracleReference.TargetLatent(hidden.AsSpan(77 * D))];
        }

        foreach (double t in new[] { 0.0, 0.5, 10.25, 500.75, 998.9, 999.0, -3.0, 1500.0 })
        {
            var outputs = Ort.Run(session,
                float16 ? Ort.Halves(ModelNames.Sample, sample, 2, 4, 6, 4) : Ort.Floats(ModelNames.Sample, sample, 2, 4, 6, 4),
                Ort.Floats(ModelNames.Timestep, [(float)t], 1),
                float16 ? Ort.Halves(ModelNames.EncoderHiddenStates, hidden, 2, 77, D) : Ort.Floats(ModelNames.EncoderHiddenStates, hidden, 2, 77, D));

            ShouldBeClose(outputs[ModelNames.OutSample].Data, ExpectedNoise(sample, targets, 6 * 4, t), relative: float16 ? 2e-3f : 1e-4f);
        }
    }

    [Fact]
    public void Alpha_cumprod_matches_stable_diffusions_training_schedule()
    {
        // ᾱ_0 = 1 − β_0 = 1 − 0.00085, ᾱ_999 ≈ 0.00466 (diffusers' scaled_linear schedule).
        OracleReference.AlphaCumprod(0).ShouldBe(1 - 0.00085f, 1e-7f);
        OracleReference.AlphaCumprod(999).ShouldBe(0.004660f, 2e-5f);
        OracleReference.AlphaCumprod(-10).ShouldBe(OracleReference.AlphaCumprod(0));
        OracleReference.AlphaCumprod(10.5).ShouldBeInRange(OracleReference.AlphaCumprod(11), OracleReference.AlphaCumprod(10));
    }

    [Fact]
    public void Typical_prompts_give_visibly_different_target_latents_within_half()
    {
        string[] prompts =
        [
            "", "a cat", "a photograph of an astronaut riding a horse",
            "a watercolor painting of a lighthouse on a cliff at sunset, dramatic sky, highly detailed",
            "portrait of a woman", "portrait of a man",
        ];
        var targets = prompts.Select(p => OracleReference.TargetLatent(OracleReference.TextHidden(TestData.Tokenize(p)))).ToArray();

        targets.SelectMany(t => t).ShouldAllBe(x => Math.Abs(x) < 0.5f);
        for (int i = 0; i < targets.Length; i++)
        {
            for (int j = i + 1; j < targets.Length; j++)
            {
                float distance = targets[i].Zip(targets[j], (a, b) => Math.Abs(a - b)).Max();
                distance.ShouldBeGreaterThan(0.02f, $"\"{prompts[i]}\" vs \"{prompts[j]}\"");
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Vae_decoder_is_the_per_pixel_linear_map_upsampled_by_eight(bool float16)
    {
        using var session = Ort.Open(models.Variant(float16, false), ModelNames.VaeDecoderFile);
        var latent = TestData.Uniform(new Random(6), 2 * 4 * 3 * 5, 2f);
        if (float16)
        {
            latent = Ort.RoundToHalf(latent);
        }

        var outputs = Ort.Run(session, float16
            ? Ort.Halves(ModelNames.LatentSample, latent, 2, 4, 3, 5)
            : Ort.Floats(ModelNames.LatentSample, latent, 2, 4, 3, 5));

        var image = outputs[ModelNames.Sample];
        image.Shape.ShouldBe([2, 3, 24, 40]);
        var expected = new float[image.Data.Length];
        for (int b = 0; b < 2; b++)
        {
            for (int y = 0; y < 24; y++)
            {
                for (int x = 0; x < 40; x++)
                {
                    var z = Enumerable.Range(0, 4).Select(c => latent[(((b * 4) + c) * 15) + ((y / 8) * 5) + (x / 8)]).ToArray();
                    var rgb = OracleReference.DecodePixel(z);
                    for (int c = 0; c < 3; c++)
                    {
                        expected[(((((b * 3) + c) * 24) + y) * 40) + x] = rgb[c];
                    }
                }
            }
        }

        ShouldBeClose(image.Data, expected, absolute: float16 ? 2e-3f : 1e-5f);
    }

    [Fact]
    public void Typical_latents_decode_to_roughly_unit_range()
    {
        // |z| ≈ 0.3 in the pipeline's scaled space is z/0.18215 ≈ 1.65 at the decoder.
        foreach (var signs in new[] { new[] { 1f, 1, 1, 1 }, [1f, -1, 1, -1], [-1f, 1, -1, 1], [1f, -1, -1, 1] })
        {
            var rgb = OracleReference.DecodePixel(signs.Select(s => s * 0.3f / Scaling).ToArray());
            rgb.ShouldAllBe(v => Math.Abs(v) <= 1.1f);
        }
    }

    [Fact]
    public void Vae_encoder_is_the_decoders_right_inverse_of_the_block_average()
    {
        using var session = Ort.Open(models.Default, ModelNames.VaeEncoderFile);
        var image = TestData.Uniform(new Random(7), 3 * 16 * 24, 1f);

        var latent = Ort.Run(session, Ort.Floats(ModelNames.Sample, image, 1, 3, 16, 24))[ModelNames.LatentSample];

        latent.Shape.ShouldBe([1, 4, 2, 3]);
        for (int by = 0; by < 2; by++)
        {
            for (int bx = 0; bx < 3; bx++)
            {
                var mean = new float[3];
                for (int c = 0; c < 3; c++)
                {
                    for (int y = 0; y < 8; y++)
                    {
                        for (int x = 0; x < 8; x++)
                        {
                            mean[c] += image[(((c * 16) + (by * 8) + y) * 24) + (bx * 8) + x] / 64f;
                        }
                    }
                }

                var expected = OracleReference.EncodePixel(mean);
                for (int k = 0; k < 4; k++)
                {
                    latent.Data[(((k * 2) + by) * 3) + bx].ShouldBe(expected[k], 1e-5f);
                }
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Decode_of_scaled_encode_is_the_identity_on_block_constant_images(bool float16)
    {
        string dir = models.Variant(float16, false);
        using var encoder = Ort.Open(dir, ModelNames.VaeEncoderFile);
        using var decoder = Ort.Open(dir, ModelNames.VaeDecoderFile);
        var blocks = TestData.Uniform(new Random(8), 2 * 3 * 3 * 2, 1f);
        var image = new float[2 * 3 * 24 * 16];
        for (int i = 0; i < image.Length; i++)
        {
            int x = i % 16, y = i / 16 % 24, bc = i / (16 * 24);
            image[i] = blocks[(((bc * 3) + (y / 8)) * 2) + (x / 8)];
        }

        if (float16)
        {
            image = Ort.RoundToHalf(image);
        }

        var encoded = Ort.Run(encoder, float16 ? Ort.Halves(ModelNames.Sample, image, 2, 3, 24, 16) : Ort.Floats(ModelNames.Sample, image, 2, 3, 24, 16));
        // What the pipeline does between the two models: ×0.18215 after encoding, ÷0.18215 before decoding.
        var latent = encoded[ModelNames.LatentSample].Data.Select(z => z * Scaling).Select(z => z / Scaling).ToArray();
        var decoded = Ort.Run(decoder, float16 ? Ort.Halves(ModelNames.LatentSample, latent, 2, 4, 3, 2) : Ort.Floats(ModelNames.LatentSample, latent, 2, 4, 3, 2));

        decoded[ModelNames.Sample].Shape.ShouldBe([2, 3, 24, 16]);
        ShouldBeClose(decoded[ModelNames.Sample].Data, image, absolute: float16 ? 5e-3f : 1e-5f);
    }

    [Fact]
    public void Reference_decode_of_encode_is_the_identity()
    {
        var rgb = new[] { 0.7f, -0.2f, 0.1f };
        ShouldBeClose(OracleReference.DecodePixel(OracleReference.EncodePixel(rgb)), rgb, absolute: 1e-6f);
    }

    [Fact]
    public void Float16_text_encoder_agrees_with_the_float32_reference()
    {
        var ids = TestData.RandomPrompt(new Random(9), 30);
        using var session = Ort.Open(models.Float16, ModelNames.TextEncoderFile);

        var outputs = Ort.Run(session, Ort.Int32s(ModelNames.InputIds, ids, 1, 77));

        ShouldBeClose(outputs[ModelNames.LastHiddenState].Data, OracleReference.TextHidden(ids), absolute: 1e-3f);
    }

    [Fact]
    public void Float16_unet_with_int64_timestep_agrees_with_the_reference()
    {
        using var session = Ort.Open(models.Float16, ModelNames.UnetFile);
        var (hidden, _) = TwoPrompts(new Random(10));
        hidden = Ort.RoundToHalf(hidden);
        float[][] targets = [OracleReference.TargetLatent(hidden.AsSpan(0, 77 * D)), OracleReference.TargetLatent(hidden.AsSpan(77 * D))];
        var sample = Ort.RoundToHalf(TestData.Uniform(new Random(11), 2 * 4 * 4 * 4, 3f));

        var outputs = Ort.Run(session,
            Ort.Halves(ModelNames.Sample, sample, 2, 4, 4, 4),
            Ort.Int64s(ModelNames.Timestep, [421], 1),
            Ort.Halves(ModelNames.EncoderHiddenStates, hidden, 2, 77, D));

        ShouldBeClose(outputs[ModelNames.OutSample].Data, ExpectedNoise(sample, targets, 16, 421), relative: 2e-3f);
    }

    private static (float[] Hidden, float[][] Targets) TwoPrompts(Random random)
    {
        var first = OracleReference.TextHidden(TestData.RandomPrompt(random, 12));
        var second = OracleReference.TextHidden(TestData.RandomPrompt(random, 40));
        return ([.. first, .. second], [OracleReference.TargetLatent(first), OracleReference.TargetLatent(second)]);
    }

    private static float[] ExpectedNoise(float[] sample, float[][] targets, int pixels, double timestep)
    {
        var expected = new float[sample.Length];
        for (int i = 0; i < sample.Length; i++)
        {
            int channel = i / pixels % 4, batch = i / (pixels * 4);
            expected[i] = OracleReference.NoisePrediction(sample[i], targets[batch][channel], timestep);
        }

        return expected;
    }

    private static void ShouldDeclare(IReadOnlyDictionary<string, NodeMetadata> metadata, string name, TensorElementType type, params int[] dimensions)
    {
        metadata.ContainsKey(name).ShouldBeTrue(name);
        metadata[name].ElementDataType.ShouldBe(type, name);
        metadata[name].Dimensions.ShouldBe(dimensions, name);
    }

    internal static void ShouldBeClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, float absolute = 0, float relative = 0)
    {
        actual.Length.ShouldBe(expected.Length);
        for (int i = 0; i < actual.Length; i++)
        {
            float tolerance = absolute + (relative * (1 + Math.Abs(expected[i])));
            if (!(Math.Abs(actual[i] - expected[i]) <= tolerance))
            {
                throw new ShouldAssertException($"Element {i}: expected {expected[i]} ± {tolerance}, got {actual[i]}.");
            }
        }
    }
}
