using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;
using RenderFarm.Diffusion.Schedulers;

namespace RenderFarm.Diffusion.Tests.Pipelines;

[Collection(OracleCollection.Name)]
public sealed class ModelFormatTests(OracleModels models) : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("renderfarm-model-format-").FullName;

    [Fact]
    public void A_missing_folder_is_named_with_the_expected_layout()
    {
        var error = Should.Throw<ModelFormatException>(() => ModelFolder.Open(Path.Combine(_scratch, "nope")));
        error.Message.ShouldContain("does not exist");
        error.Message.ShouldContain("unet/model.onnx");
    }

    [Fact]
    public void A_missing_component_is_named()
    {
        var copy = CopyOracle();
        File.Delete(Path.Combine(copy, "unet", "model.onnx"));

        var error = Should.Throw<ModelFormatException>(() => ModelFolder.Open(copy));
        error.Message.ShouldContain(Path.Combine("unet", "model.onnx"));
    }

    [Fact]
    public void A_component_with_the_wrong_inputs_is_refused_with_what_it_has()
    {
        var copy = CopyOracle();
        File.Copy(Path.Combine(copy, "vae_decoder", "model.onnx"), Path.Combine(copy, "unet", "model.onnx"), overwrite: true);
        using var pipeline = StableDiffusionPipeline.Open(copy);

        var error = Should.Throw<ModelFormatException>(() => pipeline.Generate(OracleExpectations.Request(SamplerNames.Euler), null, CancellationToken.None));
        error.Message.ShouldContain("no input 'sample'");
        error.Message.ShouldContain("latent_sample");
    }

    [Fact]
    public void A_corrupt_onnx_file_is_reported_as_a_model_error()
    {
        var copy = CopyOracle();
        File.WriteAllText(Path.Combine(copy, "text_encoder", "model.onnx"), "not a model");
        using var pipeline = StableDiffusionPipeline.Open(copy);

        var error = Should.Throw<ModelFormatException>(() => pipeline.Generate(OracleExpectations.Request(SamplerNames.Euler), null, CancellationToken.None));
        error.Message.ShouldContain("text_encoder");
    }

    [Theory]
    [InlineData(63, 48)]
    [InlineData(64, 0)]
    public void Sizes_that_are_not_positive_multiples_of_8_are_refused(int width, int height)
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        Should.Throw<ArgumentException>(() => pipeline.Generate(OracleExpectations.Request(SamplerNames.Euler) with { Width = width, Height = height }, null, CancellationToken.None))
            .Message.ShouldContain("multiples of 8");
    }

    [Fact]
    public void An_unknown_sampler_is_refused_with_the_valid_names()
    {
        using var pipeline = StableDiffusionPipeline.Open(models.Default);
        Should.Throw<ArgumentException>(() => pipeline.Generate(OracleExpectations.Request("heun"), null, CancellationToken.None))
            .Message.ShouldContain("dpmpp_2m_karras");
    }

    private string CopyOracle()
    {
        var target = Path.Combine(_scratch, Guid.NewGuid().ToString("N"));
        foreach (var file in Directory.EnumerateFiles(models.Default, "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(models.Default, file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }

        return target;
    }

    public void Dispose() => Directory.Delete(_scratch, recursive: true);
}
