using RenderFarm.ModelGenerator.Graph;
using RenderFarm.Onnx;

namespace RenderFarm.ModelGenerator.Safety;

/// <summary>
/// A safety checker with diffusers' ONNX interface and a decision rule tests can predict exactly: an image is flagged
/// when the mean of its <c>clip_input</c> red channel (after CLIP's resize, crop and normalisation) is above
/// <paramref name="RedThreshold"/>. 0 flags images whose centre crop is redder on average than CLIP's mean red
/// (0.48145466 of full scale); -10 flags every image, 10 none.
/// </summary>
public sealed record TinySafetyCheckerOptions(float RedThreshold = 0f);

/// <summary>Writes the tiny safety checker (see <see cref="TinySafetyCheckerOptions"/>).</summary>
public static class TinySafetyChecker
{
    /// <summary>CLIP's image processor input size, which the diffusers export fixes.</summary>
    public const int InputSize = 224;

    internal static ModelProto Model(TinySafetyCheckerOptions options)
    {
        var g = new GraphBuilder("tiny_safety_checker");
        string clip = g.Input(ModelNames.ClipInput, ElementType.Float, ModelNames.Batch, 3, InputSize, InputSize);
        string images = g.Input(ModelNames.Images, ElementType.Float, ModelNames.Batch, ModelNames.ImageHeight, ModelNames.ImageWidth, 3);
        string red = g.Node("Slice", [clip, g.Int64s(0), g.Int64s(1), g.Int64s(1)]);
        string mean = g.Node("ReduceMean", [red], Attr.Ints("axes", 1, 2, 3), Attr.Int("keepdims", 0));
        string flagged = g.Node("Greater", [mean, g.Scalar(options.RedThreshold)]);
        // As diffusers' checker: flagged images come back black in out_images.
        string keep = g.Sub(g.Scalar(1f), g.Cast(flagged, ElementType.Float));
        string outImages = g.Mul(images, g.Reshape(keep, -1, 1, 1, 1));
        g.Output(outImages, ModelNames.OutImages, ElementType.Float, ModelNames.Batch, ModelNames.ImageHeight, ModelNames.ImageWidth, 3);
        g.Output(flagged, ModelNames.HasNsfwConcepts, ElementType.Bool, ModelNames.Batch);
        return g.Build($"RenderFarm tiny safety checker: flags an image when mean(clip_input[:, 0]) > {options.RedThreshold}.");
    }
}
