using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Models;

namespace RenderFarm.Diffusion.Safety;

/// <summary>
/// Stable Diffusion's safety checker in diffusers' ONNX export: <c>clip_input</c> [n, 3, 224, 224] (see
/// <see cref="ClipImageProcessor"/>) and <c>images</c> [n, H, W, 3] in [0, 1] in, <c>has_nsfw_concepts</c> [n] (bool)
/// and <c>out_images</c> out. Only the verdict is read: what happens to a flagged image is the request's
/// <see cref="SafetyMode"/>, not the export's blacked-out <c>out_images</c>.
/// </summary>
public sealed class SafetyChecker : IDisposable
{
    public const string ClipInput = "clip_input";
    public const string Images = "images";
    public const string OutImages = "out_images";
    public const string HasNsfwConcepts = "has_nsfw_concepts";

    public SafetyChecker(string path, ExecutionOptions options) =>
        Component = new OnnxComponent(path, options,
            [TensorRequirement.Floating(ClipInput, 4), TensorRequirement.Floating(Images, 4)],
            [new TensorRequirement(HasNsfwConcepts, [TensorElementType.Bool], 1)]);

    /// <summary><c>safety_checker/model.onnx</c> of a model folder.</summary>
    public static string PathIn(string modelRoot) => System.IO.Path.Combine(modelRoot, "safety_checker", "model.onnx");

    public OnnxComponent Component { get; }

    /// <summary>The checker's verdict on each image (true: flagged), one image per run so sizes may differ.</summary>
    public bool[] Check(IReadOnlyList<RgbImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var flagged = new bool[images.Count];
        for (var i = 0; i < images.Count; i++)
        {
            flagged[i] = Check(images[i]);
        }

        return flagged;
    }

    private bool Check(RgbImage image)
    {
        using var clip = ComponentRunner.CreateFloatTensor(Component.Input(ClipInput).ElementDataType, ClipImageProcessor.Preprocess(image), [1, 3, ClipImageProcessor.Size, ClipImageProcessor.Size]);
        var hwc = new float[image.Pixels.Length];
        for (var i = 0; i < hwc.Length; i++)
        {
            hwc[i] = image.Pixels[i] / 255f;
        }

        using var pixels = ComponentRunner.CreateFloatTensor(Component.Input(Images).ElementDataType, hwc, [1, image.Height, image.Width, 3]);
        using var options = new RunOptions();
        using var outputs = Component.Session.Run(options, [ClipInput, Images], [clip, pixels], [HasNsfwConcepts]);
        return outputs[0].GetTensorDataAsSpan<bool>()[0];
    }

    public void Dispose() => Component.Dispose();
}
