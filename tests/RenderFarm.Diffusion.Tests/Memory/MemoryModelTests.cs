using RenderFarm.Diffusion.Memory;

namespace RenderFarm.Diffusion.Tests.Memory;

public sealed class MemoryModelTests
{
    [Theory]
    [InlineData("6GiB", 6L << 30)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("1.5 GiB", 3L << 29)]
    [InlineData("8GB", 8_000_000_000L)]
    [InlineData("2g", 2L << 30)]
    [InlineData("1073741824", 1L << 30)]
    public void Budgets_parse_in_binary_and_decimal_units(string text, long bytes) => ByteSize.Parse(text).ShouldBe(bytes);

    [Theory]
    [InlineData("")]
    [InlineData("lots")]
    [InlineData("-1GiB")]
    [InlineData("0")]
    [InlineData("6 parsecs")]
    public void Bad_budgets_are_refused_with_an_example(string text)
    {
        ByteSize.TryParse(text, out _, out var error).ShouldBeFalse();
        error.ShouldNotBeEmpty();
    }

    [Fact]
    public void Strategy_names_round_trip_with_residency_first()
    {
        var flags = MemoryStrategyNames.Parse(["latent-tiling", "sequential", "tiled-vae"]);

        MemoryStrategyNames.Format(flags).ShouldBe(["sequential", "tiled-vae", "latent-tiling"]);
        MemoryStrategyNames.Format(MemoryStrategies.Resident).ShouldBe(["resident"]);
        Should.Throw<FormatException>(() => MemoryStrategyNames.Parse(["swap"])).Message.ShouldContain("latent-tiling");
    }

    [Theory]
    [InlineData(16, 8, 2, new[] { 0, 6, 8 })]
    [InlineData(12, 8, 2, new[] { 0, 4 })]
    [InlineData(8, 8, 2, new[] { 0 })]
    [InlineData(5, 8, 2, new[] { 0 })]
    public void Tiles_cover_the_axis_with_equal_shapes_and_the_last_flush(int length, int size, int overlap, int[] starts) =>
        new TileSize(size, overlap).Starts(length).ShouldBe(starts);

    [Fact]
    public void Calibration_fit_recovers_known_growth()
    {
        var truth = new Scaling(50e6, 20_000, 12);
        CalibrationProbe[] probes = [new(CalibratedComponent.Unet, 2, 16, 16), new(CalibratedComponent.Unet, 2, 32, 32), new(CalibratedComponent.Unet, 2, 64, 64), new(CalibratedComponent.Unet, 1, 48, 48)];
        var samples = probes.Select(p => (p, new ProbeResult(90_000_000, 3_000_000, (long)truth.Evaluate(p.Rows, p.LatentHeight * p.LatentWidth), 0.1, 0.05))).ToList();

        var profile = MemoryCalibrator.Fit("m", samples);

        profile.Unet.ActivationBytes.Fixed.ShouldBe(truth.Fixed, truth.Fixed * 1e-3);
        profile.Unet.ActivationBytes.PerToken.ShouldBe(truth.PerToken, truth.PerToken * 1e-3);
        profile.Unet.ActivationBytes.PerTokenSquared.ShouldBe(truth.PerTokenSquared, truth.PerTokenSquared * 1e-3);
        profile.Unet.WeightBytes.ShouldBe(3_000_000);
        profile.BaseBytes.ShouldBe(90_000_000);
        profile.Kind.ShouldBe(MemoryProfile.Measured);
    }

    [Fact]
    public void Profiles_round_trip_through_the_file_beside_the_model()
    {
        var dir = Directory.CreateTempSubdirectory("renderfarm-profile-").FullName;
        try
        {
            var profile = MemoryProfile.StableDiffusion15();
            profile.Save(dir);

            var loaded = MemoryProfile.TryLoad(dir)!;

            File.Exists(Path.Combine(dir, "renderfarm-memory.json")).ShouldBeTrue();
            loaded.ToJson().ShouldBe(profile.ToJson());
            File.ReadAllText(Path.Combine(dir, "renderfarm-memory.json")).ShouldContain("\"kind\": \"predicted\"");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
