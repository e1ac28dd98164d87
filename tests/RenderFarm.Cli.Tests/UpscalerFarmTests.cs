using System.Globalization;
using RenderFarm.Client;
using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Cli.Tests;

/// <summary>
/// A hires job that names an upscaler on the embedded farm: the upscaler folder is pushed to the farm's model store
/// by name, the workers fetch it like a model, and the stitched image is the single-machine render with that upscaler,
/// which is the render whose base is upscaled by the tiny upscaler's closed form.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class UpscalerFarmTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    private const string Name = "tiny-upscaler-x2";

    [Fact]
    public async Task A_hires_job_naming_a_pushed_upscaler_makes_the_single_machine_image_with_that_upscaler()
    {
        var dir = Path.Combine(farm.Scratch, "upscaler-" + Guid.NewGuid().ToString("N"));
        var upscaler = Path.Combine(dir, Name);
        (await Cli.RunAsync("models", "generate", "--kind", "tiny-upscaler", upscaler)).ExitCode.ShouldBe(0);
        var push = await Cli.RunAsync("models", "push", upscaler, "--name", Name, "--replace", "--store", "local", "--data", farm.Serve.DataRoot);
        push.ExitCode.ShouldBe(0, push.Error);
        var farmUrl = farm.Serve.Address.ToString();

        var submit = await Cli.RunAsync(["submit", .. UpscalerCliTests.Request, "--mode", "hires", "--upscaler", Name, "--farm", farmUrl]);
        submit.ExitCode.ShouldBe(0, submit.Error);
        var id = Guid.Parse(submit.Output.Trim());
        var job = await EmbeddedFarmTests.WaitFinalAsync(farm.Serve.CreateClient(), id, TimeSpan.FromMinutes(5));
        job.State.ShouldBe(JobState.Succeeded, string.Join("; ", job.Errors.Select(e => e.Error)));
        var fetch = await Cli.RunAsync("fetch", id.ToString(), "-o", Path.Combine(dir, "final"), "--farm", farmUrl);
        fetch.ExitCode.ShouldBe(0, fetch.Error);
        var png = await File.ReadAllBytesAsync(Path.Combine(dir, "final", string.Create(CultureInfo.InvariantCulture, $"{job.Items - 1:D6}.png")));
        PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword].ShouldEndWith($"Hires upscaler: {Name}");

        // The workers' model, rendered on one machine with the upscaler folder: the same bytes.
        var model = Path.Combine(farm.Serve.DataRoot, "models", "tiny-sd");
        var single = Path.Combine(dir, "single.png");
        var render = await Cli.RunAsync(["render", .. UpscalerCliTests.Request, "--hires", "--model", model, "--upscaler", upscaler, "-o", single]);
        render.ExitCode.ShouldBe(0, render.Error);
        png.ShouldBe(await File.ReadAllBytesAsync(single));
        // And the engine with the closed form in the upscaler's place: so the farm's tiles refined the upscaler's output.
        png.ShouldBe(await UpscalerCliTests.ClosedFormRenderAsync(model, Name));
    }

    [Fact]
    public async Task A_hires_job_naming_an_upscaler_the_farm_does_not_have_is_refused_with_the_field()
    {
        var submit = await Cli.RunAsync(["submit", .. UpscalerCliTests.Request, "--mode", "hires", "--upscaler", "no-such-upscaler", "--farm", farm.Serve.Address.ToString()]);

        submit.ExitCode.ShouldBe(2);
        submit.Error.ShouldContain("upscaler");
        submit.Error.ShouldContain("no-such-upscaler");
    }

    [Fact]
    public async Task An_upscaler_on_a_job_that_is_not_hires_is_refused_with_the_field()
    {
        var submit = await Cli.RunAsync("submit", "a red fox", "--width", "64", "--height", "64", "--steps", "2", "--upscaler", Name, "--farm", farm.Serve.Address.ToString());

        submit.ExitCode.ShouldBe(2);
        submit.Error.ShouldContain("upscaler is only used by mode hires");
    }
}
