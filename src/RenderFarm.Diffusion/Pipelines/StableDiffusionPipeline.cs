using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Randomness;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.Diffusion.Tokenizers;

namespace RenderFarm.Diffusion.Pipelines;

/// <summary>
/// txt2img, img2img and inpainting with classifier-free guidance on one model folder. Components load on first use
/// and stay resident; the memory planner (later) decides otherwise per render.
/// </summary>
public sealed class StableDiffusionPipeline : IDisposable
{
    private const int LatentChannels = 4;
    private const int VaeScale = 8;
    private readonly Lazy<ClipTokenizer> _tokenizer;

    public StableDiffusionPipeline(ModelFolder model, ExecutionOptions? options = null)
    {
        Model = model;
        var execution = options ?? ExecutionOptions.Default;
        TextEncoder = new TextEncoder(model.TextEncoderPath, execution);
        Unet = new Unet(model.UnetPath, execution);
        VaeDecoder = new VaeDecoder(model.VaeDecoderPath, execution);
        VaeEncoder = new VaeEncoder(model.VaeEncoderPath, execution);
        _tokenizer = new Lazy<ClipTokenizer>(() => ClipTokenizer.FromFolder(model.TokenizerDirectory));
    }

    public ModelFolder Model { get; }
    public TextEncoder TextEncoder { get; }
    public Unet Unet { get; }
    public VaeDecoder VaeDecoder { get; }
    public VaeEncoder VaeEncoder { get; }
    public ClipTokenizer Tokenizer => _tokenizer.Value;

    public static StableDiffusionPipeline Open(string modelDirectory, ExecutionOptions? options = null) =>
        new(ModelFolder.Open(modelDirectory), options);

    public Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken) =>
        Task.Run(() => Generate(request, progress, cancellationToken), cancellationToken);

    /// <summary>Renders every image of <paramref name="request"/> in one batch. Cancellation is honoured between steps and aborts a running UNet call.</summary>
    public GenerationResult Generate(GenerationRequest request, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        Guard(request);
        var batch = request.Images.Count;
        var latentHeight = request.Height / VaeScale;
        var latentWidth = request.Width / VaeScale;
        var imageLength = LatentChannels * latentHeight * latentWidth;
        var useGuidance = request.GuidanceScale > 1.0;

        var scheduler = SchedulerFactory.Create(request.Sampler, Model.Scheduler, request.Eta);
        scheduler.SetTimesteps(request.Steps);

        var (hidden, hiddenWidth, truncations) = EncodePrompts(request.Images, useGuidance);
        cancellationToken.ThrowIfCancellationRequested();

        var generators = request.Images.Select(i => new TorchCpuGenerator(i.Seed)).ToArray();
        var latents = new float[batch * imageLength];
        var noise = new float[batch * imageLength];
        for (var i = 0; i < batch; i++)
        {
            generators[i].FillNormal(noise.AsSpan(i * imageLength, imageLength));
        }

        var startIndex = 0;
        float[]? sourceLatents = null;
        float[]? latentMask = null;
        RgbImage? source = null;
        if (request.Mode == GenerationMode.TextToImage)
        {
            TensorPrimitives.Multiply(noise, scheduler.InitNoiseSigma, latents);
        }
        else
        {
            source = ImageOps.Resize(request.InitImage!, request.Width, request.Height);
            var encoded = VaeEncoder.Encode(source.ToModelPlanes(), request.Height, request.Width);
            TensorPrimitives.Multiply(encoded, Model.LatentScalingFactor, encoded);
            sourceLatents = new float[batch * imageLength];
            for (var i = 0; i < batch; i++)
            {
                encoded.CopyTo(sourceLatents, i * imageLength);
            }

            // diffusers: init_timestep = min(int(steps * strength), steps); start at steps - init_timestep.
            // At least one step, so a tiny strength still denoises instead of indexing past the schedule.
            var initSteps = Math.Clamp((int)(request.Steps * request.Strength), 1, request.Steps);
            startIndex = Math.Max(request.Steps - initSteps, 0);
            scheduler.AddNoise(sourceLatents, noise, startIndex, latents);
            if (request.Mode == GenerationMode.Inpaint)
            {
                latentMask = LatentMask(ImageOps.Resize(request.Mask!, request.Width, request.Height), latentHeight, latentWidth, batch);
            }
        }

        var inpaint = latentMask is null ? null : new InpaintState(sourceLatents!, noise, latentMask);
        using var loop = new DenoisingLoop(Unet, scheduler, latents, latentHeight, latentWidth, hidden, hiddenWidth, request.GuidanceScale, generators, inpaint);
        using var abort = cancellationToken.Register(loop.Terminate);
        var total = scheduler.Timesteps.Count;
        for (var step = startIndex; step < total; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                loop.RunStep(step);
            }
            catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }

            if (progress is not null)
            {
                var preview = request.PreviewInterval > 0 && (step - startIndex + 1) % request.PreviewInterval == 0
                    ? LatentPreview.Render(latents.AsSpan(0, imageLength), latentHeight, latentWidth)
                    : null;
                progress.Report(new GenerationProgress(step - startIndex + 1, total - startIndex, preview));
            }
        }

        var images = new GeneratedImage[batch];
        for (var i = 0; i < batch; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var latent = latents.AsSpan(i * imageLength, imageLength);
            TensorPrimitives.Divide(latent, Model.LatentScalingFactor, latent);
            var image = RgbImage.FromModelPlanes(VaeDecoder.Decode(latent, latentHeight, latentWidth), request.Width, request.Height);
            if (request.Mode == GenerationMode.Inpaint)
            {
                image = PasteUnmasked(image, source!, ImageOps.Resize(request.Mask!, request.Width, request.Height));
            }

            images[i] = new GeneratedImage(i, image, Parameters(request, request.Images[i]));
        }

        return new GenerationResult(images, truncations);
    }

    private GenerationParameters Parameters(GenerationRequest request, ImageSpec spec) => new()
    {
        Prompt = spec.Prompt,
        NegativePrompt = spec.NegativePrompt,
        Steps = request.Steps,
        Sampler = request.Sampler,
        GuidanceScale = request.GuidanceScale,
        Seed = spec.Seed,
        Width = request.Width,
        Height = request.Height,
        Model = Model.Name,
        DenoisingStrength = request.Mode == GenerationMode.TextToImage ? null : request.Strength,
    };

    private (float[] Hidden, int Width, IReadOnlyList<PromptTruncation> Truncations) EncodePrompts(IReadOnlyList<ImageSpec> images, bool useGuidance)
    {
        var rows = new List<int[]>(images.Count * 2);
        var truncations = new List<PromptTruncation>();
        void Add(int index, string text, bool negative)
        {
            var tokens = Tokenizer.Encode(text);
            if (tokens.Truncated)
            {
                truncations.Add(new PromptTruncation(index, negative, tokens.DroppedText));
            }

            rows.Add(tokens.Ids);
        }

        if (useGuidance)
        {
            for (var i = 0; i < images.Count; i++)
            {
                Add(i, images[i].NegativePrompt, negative: true);
            }
        }

        for (var i = 0; i < images.Count; i++)
        {
            Add(i, images[i].Prompt, negative: false);
        }

        var (hidden, width) = TextEncoder.Encode(rows);
        return (hidden, width, truncations);
    }

    /// <summary>One value per latent cell, repeated for each channel and image: 1 where any pixel of its 8×8 block is to be repainted.</summary>
    private static float[] LatentMask(RgbImage mask, int latentHeight, int latentWidth, int batch)
    {
        var plane = latentHeight * latentWidth;
        var result = new float[batch * LatentChannels * plane];
        for (var y = 0; y < latentHeight; y++)
        {
            for (var x = 0; x < latentWidth; x++)
            {
                var repaint = false;
                for (var dy = 0; dy < VaeScale && !repaint; dy++)
                {
                    for (var dx = 0; dx < VaeScale && !repaint; dx++)
                    {
                        repaint = IsMasked(mask, (y * VaeScale + dy) * mask.Width + x * VaeScale + dx);
                    }
                }

                if (repaint)
                {
                    for (var k = 0; k < batch * LatentChannels; k++)
                    {
                        result[k * plane + y * latentWidth + x] = 1f;
                    }
                }
            }
        }

        return result;
    }

    private static bool IsMasked(RgbImage mask, int pixel)
    {
        var p = mask.Pixels.AsSpan(pixel * 3, 3);
        return (p[0] * 299 + p[1] * 587 + p[2] * 114) / 1000 >= 128;
    }

    /// <summary>Pixels outside the mask are the source's own: a VAE round trip is lossy, and users expect those pixels untouched.</summary>
    private static RgbImage PasteUnmasked(RgbImage generated, RgbImage source, RgbImage mask)
    {
        var pixels = (byte[])generated.Pixels.Clone();
        for (var i = 0; i < generated.Width * generated.Height; i++)
        {
            if (!IsMasked(mask, i))
            {
                pixels[i * 3] = source.Pixels[i * 3];
                pixels[i * 3 + 1] = source.Pixels[i * 3 + 1];
                pixels[i * 3 + 2] = source.Pixels[i * 3 + 2];
            }
        }

        return new RgbImage(generated.Width, generated.Height, pixels);
    }

    private void Guard(GenerationRequest request)
    {
        if (request.Images.Count == 0)
        {
            throw new ArgumentException("A request needs at least one image.", nameof(request));
        }

        if (request.Width % VaeScale != 0 || request.Height % VaeScale != 0 || request.Width < VaeScale || request.Height < VaeScale)
        {
            throw new ArgumentException($"Width and height must be positive multiples of 8 (got {request.Width}x{request.Height}).", nameof(request));
        }

        if (request.Steps is < 1 or > 1000)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.Steps, "Steps must be between 1 and 1000.");
        }

        if (!double.IsFinite(request.GuidanceScale))
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.GuidanceScale, "Guidance scale must be a finite number.");
        }

        if (request.Mode != GenerationMode.TextToImage)
        {
            if (request.InitImage is null)
            {
                throw new ArgumentException($"{request.Mode} needs an init image.", nameof(request));
            }

            if (request.Strength is <= 0 or > 1 || double.IsNaN(request.Strength))
            {
                throw new ArgumentOutOfRangeException(nameof(request), request.Strength, "Strength must be in (0, 1].");
            }

            if (!Model.HasVaeEncoder)
            {
                throw new ModelFormatException($"{request.Mode} needs vae_encoder/model.onnx, which '{Model.Root}' lacks.");
            }
        }

        if (request.Mode == GenerationMode.Inpaint && request.Mask is null)
        {
            throw new ArgumentException("Inpaint needs a mask.", nameof(request));
        }
    }

    public void Dispose()
    {
        TextEncoder.Component.Dispose();
        Unet.Component.Dispose();
        VaeDecoder.Component.Dispose();
        VaeEncoder.Component.Dispose();
    }
}
