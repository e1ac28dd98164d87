using System.Diagnostics;
using System.Text.Json;
using RenderFarm.Diffusion.Memory;

namespace RenderFarm.Cli.Tests;

[Collection(CliCollection.Name)]
public sealed class PlanCommandTests(CliModels models)
{
    private const long MiB = 1L << 20;

    /// <summary>A copy of the oracle model with a round-number CPU profile beside it.</summary>
    private string PlannedModel()
    {
        var directory = Path.Combine(models.Scratch, "planned-" + Guid.NewGuid().ToString("N"));
        foreach (var file in Directory.EnumerateFiles(models.Oracle, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(directory, Path.GetRelativePath(models.Oracle, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        static ComponentProfile Component(long weights, Scaling activation) =>
            new() { WeightBytes = weights, ActivationBytes = activation, Seconds = new Scaling(0.01, 1e-5, 1e-9), LoadSeconds = 0.5 };
        new MemoryProfile
        {
            Model = "planned",
            Kind = MemoryProfile.Measured,
            Device = MemoryProfile.CpuDevice,
            BaseBytes = 100 * MiB,
            TextEncoder = Component(50 * MiB, new Scaling(10 * MiB, 1 * MiB, 0)),
            Unet = Component(400 * MiB, new Scaling(20 * MiB, 4096, 16)),
            VaeDecoder = Component(100 * MiB, new Scaling(10 * MiB, 20_000, 0)),
            VaeEncoder = Component(80 * MiB, new Scaling(10 * MiB, 20_000, 0)),
        }.Save(directory);
        return directory;
    }

    private static JsonElement Json(string stdout) => JsonDocument.Parse(stdout).RootElement;

    private static string[] Strategy(JsonElement plan) => [.. plan.GetProperty("strategy").EnumerateArray().Select(e => e.GetString()!)];

    [Fact]
    public async Task Plentiful_memory_plans_resident_with_the_required_json_fields()
    {
        var (exitCode, stdout, stderr) = await Cli.RunAsync("plan", "--model", PlannedModel(), "--width", "512", "--height", "512", "--budget", "64GiB", "--json");

        exitCode.ShouldBe(0, stderr);
        var plan = Json(stdout);
        plan.GetProperty("fits").GetBoolean().ShouldBeTrue();
        Strategy(plan).ShouldBe(["resident"]);
        plan.GetProperty("predictedPeakBytes").GetInt64().ShouldBeGreaterThan(650 * MiB);
        plan.GetProperty("reason").GetString()!.ShouldContain("fits");
        plan.GetProperty("budgetBytes").GetInt64().ShouldBe(64L << 30);
        plan.GetProperty("alternatives").GetArrayLength().ShouldBe(1);
    }

    [Fact]
    public async Task A_small_budget_falls_back_and_lists_every_rejected_alternative_with_its_reason()
    {
        var (exitCode, stdout, stderr) = await Cli.RunAsync("plan", "--model", PlannedModel(), "--width", "768", "--height", "768", "--budget", "1GiB", "--json");

        exitCode.ShouldBe(0, stderr);
        var plan = Json(stdout);
        Strategy(plan).ShouldContain("latent-tiling");
        Strategy(plan)[0].ShouldBe("sequential");
        plan.GetProperty("predictedPeakBytes").GetInt64().ShouldBeLessThanOrEqualTo(1L << 30);
        var alternatives = plan.GetProperty("alternatives").EnumerateArray().ToList();
        alternatives.Count.ShouldBeGreaterThan(2);
        alternatives[0].GetProperty("strategy")[0].GetString().ShouldBe("resident");
        alternatives.SkipLast(1).ShouldAllBe(a => !a.GetProperty("fits").GetBoolean() && a.GetProperty("reason").GetString()!.Contains("> budget"));
    }

    [Fact]
    public async Task Nothing_fitting_prints_fits_false_with_a_reason_and_exits_1()
    {
        var (exitCode, stdout, _) = await Cli.RunAsync("plan", "--model", PlannedModel(), "--budget", "300MiB", "--json");

        exitCode.ShouldBe(1);
        var plan = Json(stdout);
        plan.GetProperty("fits").GetBoolean().ShouldBeFalse();
        Strategy(plan).ShouldBeEmpty();
        plan.GetProperty("reason").GetString()!.ShouldStartWith("nothing fits");
        plan.GetProperty("largestSquare").GetInt32().ShouldBe(0);
    }

    [Fact]
    public async Task Text_output_names_the_choice_and_the_alternatives()
    {
        var (exitCode, stdout, _) = await Cli.RunAsync("plan", "--model", PlannedModel(), "--width", "768", "--height", "768", "--budget", "2GiB");

        exitCode.ShouldBe(0);
        stdout.ShouldContain("strategy: ");
        stdout.ShouldContain("rejected: needs");
        stdout.ShouldContain("chosen: fits");
        stdout.ShouldContain("largest square image that fits this budget");
    }

    [Theory]
    [InlineData("budget", "--budget", "lots")]
    [InlineData("budget", "--budget", "-2GiB")]
    [InlineData("width", "--width", "100")]
    [InlineData("height", "--height", "0")]
    [InlineData("batch", "--batch", "0")]
    public async Task Bad_input_exits_2_naming_the_field(string field, string option, string value)
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("plan", "--model", PlannedModel(), option, value);

        exitCode.ShouldBe(2);
        stderr.ShouldContain($"error: {field}:");
    }

    [Fact]
    public async Task A_model_without_a_profile_exits_2_and_says_how_to_calibrate()
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("plan", "--model", models.Tiny, "--budget", "8GiB");

        exitCode.ShouldBe(2);
        stderr.ShouldContain("--calibrate");
    }

    [Fact]
    public async Task A_fresh_install_plans_with_the_tiny_models_shipped_profile()
    {
        // A separate process with its own RENDERFARM_HOME: exactly what a new user's first `renderfarm plan` sees.
        var home = Path.Combine(models.Scratch, "fresh-home-" + Guid.NewGuid().ToString("N"));
        var (fileName, prefix) = ProbeProcess.Self("renderfarm");
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in prefix.Concat(["plan", "--width", "512", "--height", "512", "--json"]))
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["RENDERFARM_HOME"] = home;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);

        process.ExitCode.ShouldBe(0, await stderr);
        var plan = Json(await stdout);
        plan.GetProperty("model").GetString().ShouldBe("tiny-sd");
        plan.GetProperty("profileKind").GetString().ShouldBe(MemoryProfile.Measured);
        plan.GetProperty("fits").GetBoolean().ShouldBeTrue();
        File.Exists(Path.Combine(home, "models", "tiny-sd", MemoryProfile.FileName)).ShouldBeTrue();
    }

    [Fact]
    public async Task A_tiny_model_written_by_models_generate_plans_at_once()
    {
        var directory = Path.Combine(models.Scratch, "generated-" + Guid.NewGuid().ToString("N"));
        (await Cli.RunAsync("models", "generate", "--kind", "tiny", directory)).ExitCode.ShouldBe(0);

        var (exitCode, stdout, stderr) = await Cli.RunAsync("plan", "--model", directory, "--width", "256", "--height", "256", "--json");

        exitCode.ShouldBe(0, stderr);
        Json(stdout).GetProperty("profileKind").GetString().ShouldBe(MemoryProfile.Measured);
    }

    [Fact]
    public async Task Stable_diffusion_15_plans_from_its_predicted_profile()
    {
        var (exitCode, stdout, stderr) = await Cli.RunAsync("plan", "--model", "sd15", "--width", "512", "--height", "512", "--budget", "8GiB", "--json");

        exitCode.ShouldBe(0, stderr);
        var plan = Json(stdout);
        Strategy(plan).ShouldBe(["resident"]);
        plan.GetProperty("profileKind").GetString().ShouldBe("predicted");

        var (noBudget, _, error) = await Cli.RunAsync("plan", "--model", "sd15");
        noBudget.ShouldBe(2);
        error.ShouldContain("--budget");
    }

    [Fact]
    public async Task Calibrate_measures_each_probe_in_a_child_process_and_stores_the_profile_beside_the_model()
    {
        var model = Path.Combine(models.Scratch, "calibrated-" + Guid.NewGuid().ToString("N"));
        RenderFarm.ModelGenerator.TestModels.EnsureOracle(model);

        var (exitCode, stdout, stderr) = await Cli.RunAsync("plan", "--model", model, "--calibrate", "--width", "256", "--height", "256", "--json");

        exitCode.ShouldBe(0, stderr);
        stderr.ShouldContain("calibrate: unet:2:64:64");
        var profile = MemoryProfile.TryLoad(model)!;
        profile.Kind.ShouldBe(MemoryProfile.Measured);
        profile.BaseBytes.ShouldBeGreaterThan(10 * MiB);
        profile.Samples.Count.ShouldBe(MemoryCalibrator.DefaultProbes.Count);
        Json(stdout).GetProperty("fits").GetBoolean().ShouldBeTrue();
    }
}
