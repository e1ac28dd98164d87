namespace RenderFarm.ModelGenerator;

/// <summary>Tensor and dynamic-axis names of the diffusers/Optimum Stable Diffusion ONNX export, which both generated models share.</summary>
public static class ModelNames
{
    public const string InputIds = "input_ids";
    public const string LastHiddenState = "last_hidden_state";
    public const string PoolerOutput = "pooler_output";
    public const string Sample = "sample";
    public const string Timestep = "timestep";
    public const string EncoderHiddenStates = "encoder_hidden_states";
    public const string OutSample = "out_sample";
    public const string LatentSample = "latent_sample";

    /// <summary>SDXL: the second text encoder's projected pooled output, and the UNet input that takes it.</summary>
    public const string TextEmbeds = "text_embeds";

    /// <summary>SDXL: the UNet's size conditioning, [batch, 6] = (original h, w, crop top, left, target h, w).</summary>
    public const string TimeIds = "time_ids";

    /// <summary>A text encoder exported with <c>output_hidden_states</c>: the residual stream after <paramref name="layer"/> layers.</summary>
    public static string HiddenStates(int layer) => $"hidden_states.{layer}";

    public const string Batch = "batch";
    public const string LatentHeight = "latent_height";
    public const string LatentWidth = "latent_width";
    public const string ImageHeight = "image_height";
    public const string ImageWidth = "image_width";

    public const string TextEncoderFile = "text_encoder/model.onnx";
    public const string TextEncoder2File = "text_encoder_2/model.onnx";
    public const string UnetFile = "unet/model.onnx";
    public const string VaeDecoderFile = "vae_decoder/model.onnx";
    public const string VaeEncoderFile = "vae_encoder/model.onnx";
    public const string SafetyCheckerFile = "safety_checker/model.onnx";
    public const string ClipInput = "clip_input";
    public const string Images = "images";
    public const string OutImages = "out_images";
    public const string HasNsfwConcepts = "has_nsfw_concepts";
    public const string ManifestFile = "renderfarm-model.json";
}
