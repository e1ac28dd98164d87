using System.Text.Json;
using RenderFarm.Diffusion.Randomness;

namespace RenderFarm.Diffusion.Tests.Randomness;

/// <summary>
/// Draws compared with PyTorch's own (shared/rng/torch-cpu-randn.json, recorded with PyTorch 2.11 on x86-64). Values
/// are compared bit for bit: the generator reproduces torch's arithmetic, not just its distribution.
/// </summary>
public sealed class TorchCpuGeneratorTests
{
    public static TheoryData<string> ShapedCases() => ["seed0_1x4x8x8", "seed42_1x4x64x64", "seed1234567890_2x4x96x64", "seed7_1x4x3x5"];

    [Theory]
    [MemberData(nameof(ShapedCases))]
    public void Randn_matches_torch_at_the_start_and_end_and_in_sum(string name)
    {
        var reference = TorchReferenceDraws.Case(name);
        var values = Draw(reference.GetProperty("seed").GetUInt64(), ElementCount(reference));

        values[..16].ShouldBe(Floats(reference.GetProperty("first16")));
        values[^8..].ShouldBe(Floats(reference.GetProperty("last8")));
        // A single value off by one ulp moves these sums by ~1e-7; summation order alone moves them by ~1e-12.
        values.Sum(v => (double)v).ShouldBe(reference.GetProperty("sum").GetDouble(), 1e-9);
        var sumOfSquares = values.Sum(v => (double)v * v);
        var expectedSumOfSquares = reference.GetProperty("sumsq").GetDouble();
        sumOfSquares.ShouldBe(expectedSumOfSquares, expectedSumOfSquares * 1e-12);
    }

    [Theory]
    [InlineData("seed0_1x4x8x8")]
    [InlineData("seed7_1x4x3x5")]
    public void Randn_matches_torch_element_for_element(string name)
    {
        var reference = TorchReferenceDraws.Case(name);
        var values = Draw(reference.GetProperty("seed").GetUInt64(), ElementCount(reference));

        values.ShouldBe(Floats(reference.GetProperty("all")));
    }

    [Fact]
    public void A_size_that_is_not_a_multiple_of_16_redraws_the_last_block()
    {
        // 60 elements: blocks at 0..15, 16..31, 32..47, then 16 fresh uniforms for 44..59 overwrite the partial tail.
        var reference = TorchReferenceDraws.Case("seed7_1x4x3x5");
        var values = Draw(7, 60);
        var expected = Floats(reference.GetProperty("all"));

        values[40..44].ShouldBe(expected[40..44]);
        values[44..].ShouldBe(expected[44..]);
    }

    [Fact]
    public void Two_draws_in_a_row_continue_the_generator_state_like_torch()
    {
        var reference = TorchReferenceDraws.Case("seed42_two_draws_1x4x8x8");
        var generator = new TorchCpuGenerator(42);
        var first = new float[256];
        var second = new float[256];

        generator.FillNormal(first);
        generator.FillNormal(second);

        first[..4].ShouldBe(Floats(reference.GetProperty("first_draw_first4")));
        second[..4].ShouldBe(Floats(reference.GetProperty("second_draw_first4")));
    }

    [Fact]
    public void The_same_seed_gives_the_same_noise_and_a_different_seed_different_noise()
    {
        Draw(1234, 4096).ShouldBe(Draw(1234, 4096));
        Draw(1234, 4096).ShouldNotBe(Draw(1235, 4096));
    }

    // Below 16 elements torch takes its scalar kernel: at::normal_distribution<double> (Box-Muller on two 53-bit
    // uniforms, the sine half cached in the generator for the next scalar draw), cast to float. The reference file has
    // no such case; these are the values PyTorch prints for torch.manual_seed(s); torch.randn(n), to 4 decimals, as
    // reproduced in its tutorials (seed 0: randn(2, 3) and randn(10); seed 42: randn(3, 5)).
    [Theory]
    [InlineData(0ul, new[] { 1.5410f, -0.2934f, -2.1788f, 0.5684f, -1.0845f, -1.3986f })]
    [InlineData(0ul, new[] { 1.5410f, -0.2934f, -2.1788f, 0.5684f, -1.0845f, -1.3986f, 0.4033f, 0.8380f, -0.7193f, -0.4033f })]
    [InlineData(42ul, new[] { 0.3367f, 0.1288f, 0.2345f, 0.2303f, -1.1229f, -0.1863f, 2.2082f, -0.6380f, 0.4617f, 0.2674f, 0.5349f, 0.8094f, 1.1103f, -1.6898f, -0.9890f })]
    public void Small_tensors_use_torchs_scalar_double_precision_path(ulong seed, float[] printed)
    {
        var values = Draw(seed, printed.Length);

        for (var i = 0; i < printed.Length; i++)
        {
            values[i].ShouldBe(printed[i], 5e-5f);
        }
    }

    [Fact]
    public void Small_draws_in_a_row_use_the_cached_second_normal()
    {
        // Three then three from one generator is one stream of six: the third value's Box-Muller partner waits in the
        // generator's cache and opens the second draw.
        var generator = new TorchCpuGenerator(0);
        var first = new float[3];
        var second = new float[3];

        generator.FillNormal(first);
        generator.FillNormal(second);

        first.Concat(second).ShouldBe(Draw(0, 6));
        second[0].ShouldBe(0.5684f, 5e-5f);
    }

    [Fact]
    public void An_empty_span_draws_nothing()
    {
        var generator = new TorchCpuGenerator(42);
        generator.FillNormal(Span<float>.Empty);
        var values = new float[256];

        generator.FillNormal(values);

        values[..4].ShouldBe(Floats(TorchReferenceDraws.Case("seed42_two_draws_1x4x8x8").GetProperty("first_draw_first4")));
    }

    private static float[] Draw(ulong seed, int count)
    {
        var values = new float[count];
        new TorchCpuGenerator(seed).FillNormal(values);
        return values;
    }

    private static int ElementCount(JsonElement reference) =>
        reference.GetProperty("shape").EnumerateArray().Aggregate(1, (product, size) => product * size.GetInt32());

    // The file holds float32 values widened to double; narrowing them back is exact.
    private static float[] Floats(JsonElement array) => [.. array.EnumerateArray().Select(v => (float)v.GetDouble())];
}
