using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace RenderFarm.ModelGenerator.Tests;

public sealed class TinyModelTests(TinyFixture model, ITestOutputHelper output) : IClassFixture<TinyFixture>
{
    private const int D = 64;

    [Fact]
    public void Every_graph_declares_the_exports_names_types_and_shapes()
    {
        using (var text = Ort.Open(model.Directory, ModelNames.TextEncoderFile))
        {
            Declares(text.InputMetadata, ModelNames.InputIds, TensorElementType.Int32, -1, 77);
            Declares(text.OutputMetadata, ModelNames.LastHiddenState, TensorElementType.Float, -1, 77, D);
            Declares(text.OutputMetadata, ModelNames.PoolerOutput, TensorElementType.Float, -1, D);
        }

        using (var unet = Ort.Open(model.Directory, ModelNames.UnetFile))
        {
            unet.InputMetadata.Keys.ShouldBe([ModelNames.Sample, ModelNames.Timestep, ModelNames.EncoderHiddenStates]);
            Declares(unet.InputMetadata, ModelNames.Sample, TensorElementType.Float, -1, 4, -1, -1);
            Declares(unet.InputMetadata, ModelNames.Timestep, TensorElementType.Int64, 1);
            Declares(unet.InputMetadata, ModelNames.EncoderHiddenStates, TensorElementType.Float, -1, 77, D);
            Declares(unet.OutputMetadata, ModelNames.OutSample, TensorElementType.Float, -1, 4, -1, -1);
        }

        using (var decoder = Ort.Open(model.Directory, ModelNames.VaeDecoderFile))
        {
            Declares(decoder.InputMetadata, ModelNames.LatentSample, TensorElementType.Float, -1, 4, -1, -1);
            Declares(decoder.OutputMetadata, ModelNames.Sample, TensorElementType.Float, -1, 3, -1, -1);
        }

        using (var encoder = Ort.Open(model.Directory, ModelNames.VaeEncoderFile))
        {
            Declares(encoder.InputMetadata, ModelNames.Sample, TensorElementType.Float, -1, 3, -1, -1);
            Declares(encoder.OutputMetadata, ModelNames.LatentSample, TensorElementType.Float, -1, 4, -1, -1);
        }
    }

    [Fact]
    public void Every_file_stays_under_four_megabytes()
    {
        foreach (string file in new[] { ModelNames.TextEncoderFile, ModelNames.UnetFile, ModelNames.VaeDecoderFile, ModelNames.VaeEncoderFile })
        {
            long bytes = new FileInfo(Path.Combine(model.Directory, file)).Length;
            output.WriteLine($"{file}: {bytes} bytes");
            bytes.ShouldBeLessThan(4L * 1024 * 1024, file);
        }
    }

    [Fact]
    public void Text_encoder_gives_distinct_normalized_rows_and_pools_the_end_of_text_row()
    {
        int[] first = TestData.Tokenize("a cat"), second = TestData.Tokenize("a dog on a hill");
        using var session = Ort.Open(model.Directory, ModelNames.TextEncoderFile);

        var outputs = Ort.Run(session, Ort.Int32s(ModelNames.InputIds, [.. first, .. second], 2, 77));

        var hidden = outputs[ModelNames.LastHiddenState];
        hidden.Shape.ShouldBe([2, 77, D]);
        ShouldBeFiniteAndOrderOne(hidden.Data, maxAbs: 10);
        hidden.Data.AsSpan(0, 77 * D).SequenceEqual(hidden.Data.AsSpan(77 * D)).ShouldBeFalse();
        // The causal mask: the shared "a" prefix gives identical rows 0 and 1 in both prompts.
        OracleModelTests.ShouldBeClose(hidden.Data.AsSpan(0, 2 * D), hidden.Data.AsSpan(77 * D, 2 * D), absolute: 1e-5f);

        var pooled = outputs[ModelNames.PoolerOutput];
        int eos = Array.IndexOf(first, TestData.EndOfText);
        OracleModelTests.ShouldBeClose(pooled.Data.AsSpan(0, D), hidden.Data.AsSpan(eos * D, D), absolute: 0);
    }

    [Theory]
    [InlineData(8, 8)]
    [InlineData(12, 20)]
    [InlineData(7, 9)]
    [InlineData(1, 1)]
    public void Unet_runs_at_any_latent_size_with_finite_unit_scale_output(int height, int width)
    {
        using var session = Ort.Open(model.Directory, ModelNames.UnetFile);
        var sample = TestData.Uniform(new Random(height * 100 + width), 2 * 4 * height * width, 1.7f);
        var context = TestData.Uniform(new Random(1), 2 * 77 * D, 1.7f);

        foreach (long t in new long[] { 1, 500, 999 })
        {
            var outputs = Ort.Run(session,
                Ort.Floats(ModelNames.Sample, sample, 2, 4, height, width),
                Ort.Int64s(ModelNames.Timestep, [t], 1),
                Ort.Floats(ModelNames.EncoderHiddenStates, context, 2, 77, D));

            var epsilon = outputs[ModelNames.OutSample];
            epsilon.Shape.ShouldBe([2, 4, height, width]);
            output.WriteLine($"{height}x{width} t={t}: rms {Rms(epsilon.Data):F3}, max {epsilon.Data.Max(Math.Abs):F3}");
            ShouldBeFiniteAndOrderOne(epsilon.Data, maxAbs: 20);
        }
    }

    [Fact]
    public void Unet_output_depends_on_timestep_and_text()
    {
        using var session = Ort.Open(model.Directory, ModelNames.UnetFile);
        var sample = TestData.Uniform(new Random(2), 4 * 8 * 8, 1.7f);
        var first = TestData.Uniform(new Random(3), 77 * D, 1.7f);
        var second = TestData.Uniform(new Random(4), 77 * D, 1.7f);

        float[] Run(long t, float[] context) => Ort.Run(session,
            Ort.Floats(ModelNames.Sample, sample, 1, 4, 8, 8),
            Ort.Int64s(ModelNames.Timestep, [t], 1),
            Ort.Floats(ModelNames.EncoderHiddenStates, context, 1, 77, D))[ModelNames.OutSample].Data;

        var baseline = Run(500, first);
        MaxDifference(baseline, Run(100, first)).ShouldBeGreaterThan(1e-3f);
        MaxDifference(baseline, Run(500, second)).ShouldBeGreaterThan(1e-3f);
    }

    [Theory]
    [InlineData(8, 8)]
    [InlineData(12, 20)]
    [InlineData(7, 9)]
    public void Vae_decoder_and_encoder_run_with_finite_roughly_unit_range_output(int height, int width)
    {
        using var decoder = Ort.Open(model.Directory, ModelNames.VaeDecoderFile);
        using var encoder = Ort.Open(model.Directory, ModelNames.VaeEncoderFile);
        var latent = TestData.Uniform(new Random(5), 4 * height * width, 1.7f).Select(z => z / 0.18215f).ToArray();

        var image = Ort.Run(decoder, Ort.Floats(ModelNames.LatentSample, latent, 1, 4, height, width))[ModelNames.Sample];

        image.Shape.ShouldBe([1, 3, height * 8, width * 8]);
        output.WriteLine($"decoder {height}x{width}: rms {Rms(image.Data):F3}, max {image.Data.Max(Math.Abs):F3}");
        ShouldBeFiniteAndOrderOne(image.Data, maxAbs: 4);

        var encoded = Ort.Run(encoder, Ort.Floats(ModelNames.Sample, image.Data, 1, 3, height * 8, width * 8))[ModelNames.LatentSample];

        encoded.Shape.ShouldBe([1, 4, height, width]);
        var scaled = encoded.Data.Select(z => z * 0.18215f).ToArray();
        output.WriteLine($"encoder {height}x{width}: scaled rms {Rms(scaled):F3}, max {scaled.Max(Math.Abs):F3}");
        ShouldBeFiniteAndOrderOne(scaled, maxAbs: 10);
    }

    [Fact]
    public void Float16_variant_loads_and_agrees_with_the_float32_model()
    {
        string dir = TestModels.EnsureTiny(Path.Combine(model.Root, "tiny-fp16"), new TinyModelOptions(Float16: true));
        using var full = Ort.Open(model.Directory, ModelNames.UnetFile);
        using var half = Ort.Open(dir, ModelNames.UnetFile);
        half.InputMetadata[ModelNames.Sample].ElementDataType.ShouldBe(TensorElementType.Float16);
        half.OutputMetadata[ModelNames.OutSample].ElementDataType.ShouldBe(TensorElementType.Float16);
        var sample = Ort.RoundToHalf(TestData.Uniform(new Random(6), 4 * 6 * 6, 1.7f));
        var context = Ort.RoundToHalf(TestData.Uniform(new Random(7), 77 * D, 1.7f));

        var expected = Ort.Run(full, Ort.Floats(ModelNames.Sample, sample, 1, 4, 6, 6), Ort.Int64s(ModelNames.Timestep, [250], 1),
            Ort.Floats(ModelNames.EncoderHiddenStates, context, 1, 77, D))[ModelNames.OutSample].Data;
        var actual = Ort.Run(half, Ort.Halves(ModelNames.Sample, sample, 1, 4, 6, 6), Ort.Int64s(ModelNames.Timestep, [250], 1),
            Ort.Halves(ModelNames.EncoderHiddenStates, context, 1, 77, D))[ModelNames.OutSample].Data;

        OracleModelTests.ShouldBeClose(actual, expected, relative: 2e-3f);
    }

    [Fact]
    public void Two_generations_are_byte_identical()
    {
        string a = Path.Combine(model.Root, "gen-a"), b = Path.Combine(model.Root, "gen-b");
        TestModels.WriteTiny(a);
        TestModels.WriteTiny(b);

        LayoutTests.ShouldBeIdenticalTrees(a, b);
        LayoutTests.ShouldBeIdenticalTrees(a, model.Directory);
    }

    [Fact]
    public void Ensure_tiny_is_idempotent_and_regenerates_a_stale_copy()
    {
        string dir = Path.Combine(model.Root, "ensure");
        TestModels.EnsureTiny(dir).ShouldBe(Path.GetFullPath(dir));
        string unet = Path.Combine(dir, ModelNames.UnetFile);
        var marked = File.GetLastWriteTimeUtc(unet).AddDays(-1);
        File.SetLastWriteTimeUtc(unet, marked);

        TestModels.EnsureTiny(dir);
        File.GetLastWriteTimeUtc(unet).ShouldBe(marked);

        string manifest = Path.Combine(dir, ModelNames.ManifestFile);
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace($"\"generatorVersion\": \"{TestModels.GeneratorVersion}\"", "\"generatorVersion\": \"0\"", StringComparison.Ordinal));
        TestModels.EnsureTiny(dir);
        File.GetLastWriteTimeUtc(unet).ShouldNotBe(marked);
        LayoutTests.ShouldBeIdenticalTrees(dir, model.Directory);
    }

    [Fact]
    public void Racing_ensure_calls_all_return_one_complete_model()
    {
        string dir = Path.Combine(model.Root, "race");

        var results = Enumerable.Range(0, 4).AsParallel().Select(_ => TestModels.EnsureTiny(dir)).ToArray();

        results.ShouldAllBe(r => r == Path.GetFullPath(dir));
        LayoutTests.ShouldBeIdenticalTrees(dir, model.Directory);
        Directory.GetFileSystemEntries(model.Root).ShouldNotContain(e => Path.GetFileName(e).StartsWith(".race", StringComparison.Ordinal));
    }

    private static void Declares(IReadOnlyDictionary<string, NodeMetadata> metadata, string name, TensorElementType type, params int[] dimensions)
    {
        metadata.ContainsKey(name).ShouldBeTrue(name);
        metadata[name].ElementDataType.ShouldBe(type, name);
        metadata[name].Dimensions.ShouldBe(dimensions, name);
    }

    private static void ShouldBeFiniteAndOrderOne(float[] data, float maxAbs)
    {
        data.ShouldAllBe(x => float.IsFinite(x));
        data.Max(Math.Abs).ShouldBeLessThan(maxAbs);
        Rms(data).ShouldBeInRange(0.05f, 5f);
    }

    private static float Rms(float[] data) => MathF.Sqrt(data.Sum(x => x * x) / data.Length);

    private static float MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
}
