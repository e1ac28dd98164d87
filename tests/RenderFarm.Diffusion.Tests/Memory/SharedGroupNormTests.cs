using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.ModelGenerator;
using Xunit.Abstractions;

namespace RenderFarm.Diffusion.Tests.Memory;

/// <summary>
/// Tiled VAE passes whose tiles share GroupNorm statistics (<see cref="GroupNormRewrite"/>, <see cref="SharedGroupNorm"/>)
/// on the tiny model's VAE: the rewritten graph computes what the exported one does, and tiles given the whole image's
/// statistics keep its tone where tiles with their own drift (docs/benchmarks.md quotes the printed measurements).
/// </summary>
public sealed class SharedGroupNormTests(ITestOutputHelper output)
{
    private static string Tiny => TestModels.EnsureTiny(Path.Combine(Path.GetTempPath(), "renderfarm-tiny-" + TestModels.GeneratorVersion));

    [Fact]
    public void The_rewrite_replaces_every_GroupNorm_of_both_VAE_halves()
    {
        var model = ModelFolder.Open(Tiny);
        var decoder = File.ReadAllBytes(model.VaeDecoderPath);
        var (rewritten, layers, reason) = GroupNormRewrite.Rewrite(decoder);

        reason.ShouldBeNull();
        rewritten.ShouldNotBeNull();
        // The tiny decoder: mid block (2 ResNets with 2 GroupNorms each, attention with 1), 2 up blocks of 2 ResNets, the output norm.
        layers.ShouldBe(CountInstanceNorms(decoder));
        layers.ShouldBeGreaterThan(4);
        CountInstanceNorms(rewritten).ShouldBe(0);
        GroupNormRewrite.Rewrite(File.ReadAllBytes(model.VaeEncoderPath)).Layers.ShouldBe(CountInstanceNorms(File.ReadAllBytes(model.VaeEncoderPath)));
    }

    [Fact]
    public void Given_its_own_statistics_the_rewritten_decoder_decodes_as_the_exported_one()
    {
        using var pipeline = StableDiffusionPipeline.Open(Tiny);
        var z = RandomLatent(24, 20, seed: 3);

        var original = pipeline.VaeDecoder.Decode(z, 24, 20);
        var shared = pipeline.VaeDecoder.Shared;
        var statistics = shared.Gather(z, 4, 24, 20);
        var rewritten = shared.RunWith(z, 4, 24, 20, statistics);

        statistics.Layers.ShouldBe(GroupNormRewrite.Rewrite(File.ReadAllBytes(ModelFolder.Open(Tiny).VaeDecoderPath)).Layers);
        statistics.Means.ShouldAllBe(m => m.Length == 8);
        MaxDifference(original, rewritten).ShouldBeLessThan(1e-4f);

        // Another latent's statistics are used, not the tile's own: the decode changes.
        var other = shared.Gather(RandomLatent(24, 20, seed: 4, spread: 1), 4, 24, 20);
        MaxDifference(original, shared.RunWith(z, 4, 24, 20, other)).ShouldBeGreaterThan(0.05f);
    }

    [Fact]
    public void A_float16_export_takes_and_gives_float32_statistics_through_its_float16_edges()
    {
        var fp16 = TestModels.EnsureTiny(Path.Combine(Path.GetTempPath(), "renderfarm-tiny-fp16-" + TestModels.GeneratorVersion), new TinyModelOptions(Float16: true));
        using var pipeline = StableDiffusionPipeline.Open(fp16);
        var z = RandomLatent(16, 16, seed: 6);

        var original = pipeline.VaeDecoder.Decode(z, 16, 16);
        var shared = pipeline.VaeDecoder.Shared;
        var rewritten = shared.RunWith(z, 4, 16, 16, shared.Gather(z, 4, 16, 16));

        // The latent is rounded to float16 at the edge either way; inside, both graphs compute in float32.
        MaxDifference(original, rewritten).ShouldBeLessThan(2e-3f);
    }

    [Fact]
    public void Given_its_own_statistics_the_rewritten_encoder_encodes_as_the_exported_one()
    {
        using var pipeline = StableDiffusionPipeline.Open(Tiny);
        var pixels = RandomLatent(3 * 8 * 16, 8 * 12 / 3, seed: 5, spread: 1); // 3 planes of 128×96

        var original = pipeline.VaeEncoder.Encode(pixels, 128, 96);
        var shared = pipeline.VaeEncoder.Shared;
        var rewritten = shared.RunWith(pixels, 3, 128, 96, shared.Gather(pixels, 3, 128, 96));

        MaxDifference(original, rewritten).ShouldBeLessThan(1e-4f);
    }

    [Fact]
    public void Tiles_given_the_whole_latents_statistics_keep_its_tone_where_tiles_with_their_own_drift()
    {
        using var pipeline = StableDiffusionPipeline.Open(Tiny);
        const int latent = 48;
        var tile = new TileSize(16, 4);
        // A ramp across the image: each tile's own statistics flatten it (every tile normalised to the same range), which
        // is the drift in tone between neighbouring tiles that shared statistics remove.
        var z = Ramp(latent, seed: 9);

        var whole = pipeline.VaeDecoder.Decode(z, latent, latent);
        var own = TiledRunner.Run(z, 4, 1, 3, 8, latent, latent, tile,
            (t, h, w) => pipeline.VaeDecoder.Decode(t, h, w), CancellationToken.None);
        var exact = pipeline.VaeDecoder.Shared.Run(z, 4, 1, 3, 8, latent, latent, tile, CancellationToken.None, statisticsSide: latent)!;
        var estimated = pipeline.VaeDecoder.DecodeTiled(z, latent, latent, tile, CancellationToken.None);

        var (ownDrift, ownRms) = Drift(whole, own, latent * 8, tile.Size * 8);
        var (exactDrift, exactRms) = Drift(whole, exact, latent * 8, tile.Size * 8);
        var (estimatedDrift, estimatedRms) = Drift(whole, estimated, latent * 8, tile.Size * 8);
        output.WriteLine($"decode {latent}² latent, tiles {tile}: worst tile tone drift / rms vs the whole decode (grey levels): " +
            $"own statistics {ownDrift * 127.5:0.00} / {ownRms * 127.5:0.00}; shared, estimated from a {tile.Size}² stand-in " +
            $"{estimatedDrift * 127.5:0.00} / {estimatedRms * 127.5:0.00}; shared, the whole latent's {exactDrift * 127.5:0.00} / {exactRms * 127.5:0.00}");

        pipeline.VaeDecoder.SharedStatisticsUnavailable.ShouldBeNull();
        exactDrift.ShouldBeLessThan(ownDrift / 4);
        estimatedDrift.ShouldBeLessThan(ownDrift / 2);
        exactRms.ShouldBeLessThan(ownRms);
    }

    [Fact]
    public void Encoder_tiles_given_the_whole_images_statistics_keep_its_tone()
    {
        using var pipeline = StableDiffusionPipeline.Open(Tiny);
        const int latent = 32;
        var tile = new TileSize(16, 4);
        var pixels = RampPixels(latent * 8, seed: 2);

        var whole = pipeline.VaeEncoder.Encode(pixels, latent * 8, latent * 8);
        var own = TiledRunner.Run(pixels, 3, 8, 4, 1, latent, latent, tile,
            (t, h, w) => pipeline.VaeEncoder.Encode(t, h, w), CancellationToken.None);
        var estimated = pipeline.VaeEncoder.EncodeTiled(pixels, latent, latent, tile, CancellationToken.None);

        var (ownDrift, _) = Drift(whole, own, latent, tile.Size, channels: 4);
        var (estimatedDrift, _) = Drift(whole, estimated, latent, tile.Size, channels: 4);
        output.WriteLine($"encode {latent * 8}² image, tiles {tile}: worst tile drift in latent units: own {ownDrift:0.0000}, shared (estimated) {estimatedDrift:0.0000}");

        estimatedDrift.ShouldBeLessThan(ownDrift / 2);
    }

    [Fact]
    public void A_tiled_render_decodes_with_the_rewritten_decoder_alone()
    {
        using var pipeline = StableDiffusionPipeline.Open(Tiny);
        var request = new GenerationRequest
        {
            Images = [new ImageSpec("a ramp", "", 1)],
            Width = 384,
            Height = 384,
            Steps = 2,
            Memory = new MemoryStrategy { Strategies = MemoryStrategyNames.Parse(["tiled-vae"]), VaeTile = new TileSize(16, 4) },
        };

        pipeline.Generate(request, null, CancellationToken.None);

        pipeline.VaeDecoder.SharedStatisticsComponent.IsLoaded.ShouldBeTrue();
        pipeline.VaeDecoder.Component.IsLoaded.ShouldBeFalse();
        pipeline.VaeDecoder.SharedStatisticsUnavailable.ShouldBeNull();
    }

    [Fact]
    public void A_graph_without_GroupNorm_is_refused_with_the_reason()
    {
        var (model, layers, reason) = GroupNormRewrite.Rewrite(File.ReadAllBytes(ModelFolder.Open(Tiny).TextEncoderPath));

        model.ShouldBeNull();
        layers.ShouldBe(0);
        reason.ShouldNotBeNull().ShouldContain("no InstanceNormalization");
        GroupNormRewrite.Rewrite([1, 2, 3, 4]).Reason.ShouldNotBeNull();
    }

    [Fact]
    public void A_GroupNorm_computed_in_float16_is_refused_rather_than_summed_in_float16()
    {
        // An fp16 export's normalisation runs in float16 (the tiny model's float16 variant keeps float32 inside): the
        // rewrite's sums would overflow there, so such a graph keeps per-tile statistics.
        var (model, layers, reason) = GroupNormRewrite.Rewrite(Float16GroupNorm());

        model.ShouldBeNull();
        layers.ShouldBe(0);
        reason.ShouldNotBeNull().ShouldContain("not float32");
    }

    private static byte[] Float16GroupNorm()
    {
        const int half = (int)RenderFarm.Onnx.TensorProto.Types.DataType.Float16;
        static RenderFarm.Onnx.TensorProto Halves(string name, int count) => new()
        {
            Name = name,
            DataType = half,
            Dims = { count },
            RawData = Google.Protobuf.ByteString.CopyFrom([.. Enumerable.Range(0, count).SelectMany(_ => BitConverter.GetBytes((Half)1))]),
        };

        var graph = new RenderFarm.Onnx.GraphProto { Name = "fp16-groupnorm" };
        graph.Input.Add(new RenderFarm.Onnx.ValueInfoProto { Name = "x", Type = new RenderFarm.Onnx.TypeProto { TensorType = new RenderFarm.Onnx.TypeProto.Types.Tensor { ElemType = half } } });
        graph.Output.Add(new RenderFarm.Onnx.ValueInfoProto { Name = "y", Type = new RenderFarm.Onnx.TypeProto { TensorType = new RenderFarm.Onnx.TypeProto.Types.Tensor { ElemType = half } } });
        graph.Initializer.Add(Halves("scale", 2));
        graph.Initializer.Add(Halves("bias", 2));
        var norm = new RenderFarm.Onnx.NodeProto { OpType = "InstanceNormalization", Name = "norm" };
        norm.Input.AddRange(["x", "scale", "bias"]);
        norm.Output.Add("y");
        graph.Node.Add(norm);
        var model = new RenderFarm.Onnx.ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new RenderFarm.Onnx.OperatorSetIdProto { Domain = "", Version = 17 });
        return Google.Protobuf.MessageExtensions.ToByteArray(model);
    }

    [Theory]
    [InlineData(48, 48, 1, 16, 16, 16)]
    [InlineData(48, 30, 1, 16, 16, 10)]
    [InlineData(40, 24, 8, 16, 16 * 8, 10 * 8)]
    [InlineData(12, 10, 1, 16, 12, 10)]
    public void The_stand_in_is_at_most_the_side_asked_for_in_whole_blocks_and_keeps_each_channels_moments(
        int blocksY, int blocksX, int scale, int side, int expectedHeight, int expectedWidth)
    {
        var random = new Random(1);
        int height = blocksY * scale, width = blocksX * scale;
        var input = Enumerable.Range(0, 2 * height * width).Select(i => (float)(i < height * width ? random.NextDouble() : 5 + 3 * random.NextDouble())).ToArray();

        var (data, h, w) = SharedGroupNorm.StandIn(input, 2, height, width, side, scale);

        (h, w).ShouldBe((expectedHeight, expectedWidth));
        for (var c = 0; c < 2; c++)
        {
            var source = input.AsSpan(c * height * width, height * width).ToArray();
            var small = data.AsSpan(c * h * w, h * w).ToArray();
            small.Average().ShouldBe(source.Average(), 1e-3);
            Std(small).ShouldBe(Std(source), 1e-3);
        }
    }

    private static double Std(float[] values)
    {
        var mean = values.Average();
        return Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
    }

    /// <summary>
    /// The worst, over the tiles' cores, of the mean difference per channel between a tiled and the whole output (what
    /// the eye sees as one tile lighter or darker than its neighbour), and the rms difference over the image.
    /// </summary>
    private static (float Drift, float Rms) Drift(float[] whole, float[] tiled, int size, int tileSide, int channels = 3)
    {
        var worst = 0.0;
        for (var ty = 0; ty < size; ty += tileSide)
        {
            for (var tx = 0; tx < size; tx += tileSide)
            {
                for (var c = 0; c < channels; c++)
                {
                    double sum = 0;
                    var n = 0;
                    for (var y = ty; y < Math.Min(size, ty + tileSide); y++)
                    {
                        for (var x = tx; x < Math.Min(size, tx + tileSide); x++)
                        {
                            var i = c * size * size + y * size + x;
                            sum += tiled[i] - whole[i];
                            n++;
                        }
                    }

                    worst = Math.Max(worst, Math.Abs(sum / n));
                }
            }
        }

        var rms = Math.Sqrt(whole.Zip(tiled, (a, b) => (double)(a - b) * (a - b)).Average());
        return ((float)worst, (float)rms);
    }

    private static float MaxDifference(float[] a, float[] b)
    {
        a.Length.ShouldBe(b.Length);
        return a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
    }

    private static float[] RandomLatent(int height, int width, int seed, double spread = 3)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, 4 * height * width).Select(_ => (float)((random.NextDouble() * 2 - 1) * spread)).ToArray();
    }

    private static float[] Ramp(int size, int seed)
    {
        var random = new Random(seed);
        var z = new float[4 * size * size];
        for (var c = 0; c < 4; c++)
        {
            for (var y = 0; y < size; y++)
            {
                for (var x = 0; x < size; x++)
                {
                    z[c * size * size + y * size + x] = (float)(6.0 * x / (size - 1) - 3 + (c == 0 ? 1.5 * y / size : 0) + (random.NextDouble() - 0.5));
                }
            }
        }

        return z;
    }

    private static float[] RampPixels(int size, int seed)
    {
        var random = new Random(seed);
        var p = new float[3 * size * size];
        for (var c = 0; c < 3; c++)
        {
            for (var y = 0; y < size; y++)
            {
                for (var x = 0; x < size; x++)
                {
                    p[c * size * size + y * size + x] = (float)Math.Clamp(2.0 * (x + y) / (2 * size - 2) - 1 + 0.2 * (random.NextDouble() - 0.5), -1, 1);
                }
            }
        }

        return p;
    }

    private static int CountInstanceNorms(byte[] model) =>
        RenderFarm.Onnx.ModelProto.Parser.ParseFrom(model).Graph.Node.Count(n => n.OpType == "InstanceNormalization");
}
