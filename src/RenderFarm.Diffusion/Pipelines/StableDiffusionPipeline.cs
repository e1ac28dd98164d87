using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Memory;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Randomness;
using RenderFarm.Diffusion.Safety;
using RenderFarm.Diffusion.Watermarking;
using RenderFarm.Diffusion.Schedulers;
using RenderFarm.Diffusion.Tokenizers;

namespace RenderFarm.Diffusion.Pipelines;

/// <summary>
/// txt2img, img2img and inpainting with classifier-free guidance on one model folder, SD 1.x/2.x or SDXL
/// (<see cref="ModelFolder.Family"/>). How a render uses memory is its
/// <see cref="MemoryStrategy"/>: resident (components load on first use and stay) unless the request names another,
/// or the pipeline has a memory budget (<see cref="ExecutionOptions.MemoryBudgetBytes"/>), in which case the
/// <see cref="MemoryPlanner"/> picks one from the model's <see cref="MemoryProfile"/> and a render that cannot fit is
/// refused with <see cref="MemoryBudgetExceededException"/> before anything runs.
/// </summary>
public sealed class StableDiffusionPipeline : IDisposable
{
    private const int LatentChannels = 4;
    private const int VaeScale = 8;
    private readonly Lazy<ClipTokenizer> _tokenizer;
    private readonly Lazy<ClipTokenizer>? _tokenizer2;

    private readonly ExecutionOptions _componentOptions;

    /// <param name="model">The model folder.</param>
    /// <param name="options">Sessions' provider and threads, and the memory budget renders must fit.</param>
    /// <param name="memoryProfile">The model's memory model; default: <c>renderfarm-memory.json</c> beside the model, if calibrated.</param>
    public StableDiffusionPipeline(ModelFolder model, ExecutionOptions? options = null, MemoryProfile? memoryProfile = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        Execution = options ?? ExecutionOptions.Default;
        MemoryProfile = memoryProfile ?? MemoryProfile.TryLoad(model.Root);
        // ONNX Runtime may use the budget less what the process holds before any session loads; without a profile the
        // whole budget is the backstop.
        var execution = _componentOptions = Execution.MemoryBudgetBytes is { } budget && Execution.ArenaLimitBytes is null
            ? Execution with { ArenaLimitBytes = Math.Max(budget - (MemoryProfile?.BaseBytes ?? 0), 1) }
            : Execution;
        TextEncoder = new TextEncoder(model.TextEncoderPath, execution);
        TextEncoder2 = model.IsXl ? new TextEncoder(model.TextEncoder2Path, execution) : null;
        Unet = new Unet(model.UnetPath, execution, addedConditioning: model.IsXl);
        VaeDecoder = new VaeDecoder(model.VaeDecoderPath, execution);
        VaeEncoder = new VaeEncoder(model.VaeEncoderPath, execution);
        _tokenizer = new Lazy<ClipTokenizer>(() => ClipTokenizer.FromFolder(model.TokenizerDirectory));
        _tokenizer2 = model.IsXl ? new Lazy<ClipTokenizer>(() => ClipTokenizer.FromFolder(model.Tokenizer2Directory)) : null;
        SafetyChecker = File.Exists(SafetyChecker.PathIn(model.Root)) ? new SafetyChecker(SafetyChecker.PathIn(model.Root), execution) : null;
    }

    public ModelFolder Model { get; }
    public ExecutionOptions Execution { get; }
    /// <summary>The model's memory model (null when it has not been calibrated and none was given).</summary>
    public MemoryProfile? MemoryProfile { get; }
    public TextEncoder TextEncoder { get; }
    /// <summary>SDXL's second text encoder (<c>text_encoder_2</c>); null for SD 1.x/2.x.</summary>
    public TextEncoder? TextEncoder2 { get; }
    public Unet Unet { get; }
    public VaeDecoder VaeDecoder { get; }
    public VaeEncoder VaeEncoder { get; }
    public ClipTokenizer Tokenizer => _tokenizer.Value;
    /// <summary>SDXL's second tokenizer (<c>tokenizer_2</c>: OpenCLIP's, padding with "!"); null for SD 1.x/2.x.</summary>
    public ClipTokenizer? Tokenizer2 => _tokenizer2?.Value;
    /// <summary>The model folder's <c>safety_checker/model.onnx</c>; null when it has none.</summary>
    public SafetyChecker? SafetyChecker { get; }

    public static StableDiffusionPipeline Open(string modelDirectory, ExecutionOptions? options = null, MemoryProfile? memoryProfile = null) =>
        new(ModelFolder.Open(modelDirectory), options, memoryProfile);

    private OnnxComponent[] Components =>
    [
        .. TextEncoders,
        Unet.Component, VaeDecoder.Component, VaeDecoder.SharedStatisticsComponent, VaeEncoder.Component, VaeEncoder.SharedStatisticsComponent,
        .. SafetyChecker is null ? Array.Empty<OnnxComponent>() : [SafetyChecker.Component],
    ];

    /// <summary>The components of the text-encode stage: SDXL's two encoders run, and are loaded, together.</summary>
    private OnnxComponent[] TextEncoders => TextEncoder2 is null ? [TextEncoder.Component] : [TextEncoder.Component, TextEncoder2.Component];

    /// <summary>The mode a request runs the checker in: as asked, else <see cref="SafetyMode.Flag"/> when the model has a checker.</summary>
    public SafetyMode SafetyModeFor(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Safety ?? (SafetyChecker is null ? SafetyMode.Off : SafetyMode.Flag);
    }

    /// <summary>The strategy a request will run with, and the plan when the planner chose it; throws when the budget cannot hold it.</summary>
    public (MemoryStrategy Strategy, MemoryPlan? Plan) ChooseMemory(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Memory?.Validate();
        if (Execution.MemoryBudgetBytes is not { } budget || MemoryProfile is null)
        {
            return (request.Memory ?? MemoryStrategy.Resident, null);
        }

        var planner = new MemoryPlanner(MemoryProfile);
        var shape = request.MemoryShape;
        if (request.Memory is { } chosen)
        {
            var prediction = planner.Predict(shape, chosen);
            if (prediction.PeakBytes > budget)
            {
                throw new MemoryBudgetExceededException(prediction.PeakBytes, budget, planner.LargestSquare(budget, shape.Batch, shape.Guidance),
                    $"{chosen} at {shape.Width}x{shape.Height}, peak in the {prediction.PeakPhase}");
            }

            return (chosen, null);
        }

        var plan = planner.Plan(shape, budget);
        if (!plan.Fits)
        {
            throw new MemoryBudgetExceededException(plan.PredictedPeakBytes, budget, planner.LargestSquare(budget, shape.Batch, shape.Guidance), plan.Reason);
        }

        return (plan.Strategy!, plan);
    }

    public Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken) =>
        Task.Run(() => Generate(request, progress, cancellationToken), cancellationToken);

    /// <summary>Renders every image of <paramref name="request"/> in one batch. Cancellation is honoured between steps and aborts a running UNet call.</summary>
    public GenerationResult Generate(GenerationRequest request, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        Guard(request);
        var (memory, plan) = ChooseMemory(request);
        try
        {
            return Render(request, memory, cancellationToken, progress) with { Memory = memory, Plan = plan };
        }
        catch (OnnxRuntimeException ex) when (Execution.MemoryBudgetBytes is { } budget && IsAllocationFailure(ex))
        {
            var largest = MemoryProfile is null ? 0 : new MemoryPlanner(MemoryProfile).LargestSquare(budget, request.Images.Count, request.GuidanceScale > 1.0);
            throw new MemoryBudgetExceededException(0, budget, largest, "ONNX Runtime's capped arena refused an allocation: " + ex.Message, ex);
        }
        finally
        {
            if (memory.Has(MemoryStrategies.Sequential))
            {
                foreach (var component in Components)
                {
                    component.Unload();
                }
            }
        }
    }

    // ONNX Runtime reports a failed arena allocation only as a runtime error with this wording; it has no distinct error code.
    private static bool IsAllocationFailure(OnnxRuntimeException ex) =>
        ex.Message.Contains("allocate", StringComparison.OrdinalIgnoreCase) || ex.Message.Contains("BFCArena", StringComparison.Ordinal);

    /// <summary>Under sequential offload only <paramref name="components"/> (one stage's) may be loaded while they run.</summary>
    private void Enter(MemoryStrategy memory, params OnnxComponent[] components)
    {
        if (memory.Has(MemoryStrategies.Sequential))
        {
            foreach (var other in Components.Where(c => !components.Contains(c)))
            {
                other.Unload();
            }
        }
    }

    private void Enter(OnnxComponent component, MemoryStrategy memory) => Enter(memory, component);

    private static void Leave(MemoryStrategy memory, params OnnxComponent[] components)
    {
        if (memory.Has(MemoryStrategies.Sequential))
        {
            foreach (var component in components)
            {
                component.Unload();
            }
        }
    }

    private static void Leave(OnnxComponent component, MemoryStrategy memory) => Leave(memory, component);

    private float[] Decode(ReadOnlySpan<float> latent, int latentHeight, int latentWidth, MemoryStrategy memory, CancellationToken cancellationToken) =>
        memory.Has(MemoryStrategies.TiledVae) && memory.VaeTile.Count(latentHeight, latentWidth) > 1
            ? VaeDecoder.DecodeTiled(latent, latentHeight, latentWidth, memory.VaeTile, cancellationToken)
            : VaeDecoder.Decode(latent, latentHeight, latentWidth);

    private float[] Encode(ReadOnlySpan<float> pixels, int latentHeight, int latentWidth, MemoryStrategy memory, CancellationToken cancellationToken) =>
        memory.Has(MemoryStrategies.TiledVae) && memory.VaeTile.Count(latentHeight, latentWidth) > 1
            ? VaeEncoder.EncodeTiled(pixels, latentHeight, latentWidth, memory.VaeTile, cancellationToken)
            : VaeEncoder.Encode(pixels, latentHeight * VaeScale, latentWidth * VaeScale);

    private GenerationResult Render(GenerationRequest request, MemoryStrategy memory, CancellationToken cancellationToken, IProgress<GenerationProgress>? progress)
    {
        var vaeOptions = MemoryPlacement.ForVae(_componentOptions, memory);
        VaeDecoder.Component.Configure(vaeOptions);
        VaeDecoder.SharedStatisticsComponent.Configure(vaeOptions);
        VaeEncoder.Component.Configure(vaeOptions);
        VaeEncoder.SharedStatisticsComponent.Configure(vaeOptions);
        var batch = request.Images.Count;
        var latentHeight = request.Height / VaeScale;
        var latentWidth = request.Width / VaeScale;
        var imageLength = LatentChannels * latentHeight * latentWidth;
        var useGuidance = request.GuidanceScale > 1.0;

        var scheduler = SchedulerFactory.Create(request.Sampler, Model.Scheduler, request.Eta);
        scheduler.SetTimesteps(request.Steps);

        PromptConditioning conditioning;
        IReadOnlyList<PromptTruncation> truncations;
        using (EngineActivity.Stage("text encode", request))
        {
            Enter(memory, TextEncoders);
            (conditioning, truncations) = Model.IsXl
                ? EncodePromptsXl(request.Images, useGuidance, request.Width, request.Height)
                : EncodePrompts(request.Images, useGuidance);
            Leave(memory, TextEncoders);
        }

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
            float[] encoded;
            using (EngineActivity.Stage("vae encode", request))
            {
                Enter(memory, VaeEncoder.Component, VaeEncoder.SharedStatisticsComponent);
                encoded = Encode(source.ToModelPlanes(), latentHeight, latentWidth, memory, cancellationToken);
                Leave(memory, VaeEncoder.Component, VaeEncoder.SharedStatisticsComponent);
            }

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
        var denoise = EngineActivity.Stage("denoise", request);
        denoise?.SetTag("renderfarm.steps", request.Steps);
        denoise?.SetTag("renderfarm.sampler", request.Sampler);
        Enter(Unet.Component, memory);
        var loop = new DenoisingLoop(Unet, scheduler, latents, latentHeight, latentWidth, conditioning, request.GuidanceScale, generators, inpaint, memory);
        try
        {
            RunSteps(loop, request, scheduler, startIndex, latents, imageLength, latentHeight, latentWidth, progress, cancellationToken);
        }
        finally
        {
            loop.Dispose();
            denoise?.Dispose();
        }

        Leave(Unet.Component, memory);
        using var decode = EngineActivity.Stage("vae decode", request);
        Enter(memory, VaeDecoder.Component, VaeDecoder.SharedStatisticsComponent);
        var images = new GeneratedImage[batch];
        for (var i = 0; i < batch; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var latent = latents.AsSpan(i * imageLength, imageLength);
            TensorPrimitives.Divide(latent, Model.LatentScalingFactor, latent);
            var image = RgbImage.FromModelPlanes(Decode(latent, latentHeight, latentWidth, memory, cancellationToken), request.Width, request.Height);
            if (request.Mode == GenerationMode.Inpaint)
            {
                image = PasteUnmasked(image, source!, ImageOps.Resize(request.Mask!, request.Width, request.Height));
            }

            images[i] = new GeneratedImage(i, image, Parameters(request, request.Images[i]));
        }

        Leave(memory, VaeDecoder.Component, VaeDecoder.SharedStatisticsComponent);
        return new GenerationResult(ApplyWatermark(request, ApplySafety(request, images, memory, cancellationToken)), truncations);
    }

    /// <summary>Embeds the request's invisible watermark in every image that is kept (after the safety checker, so a blurred image is marked as stored).</summary>
    private static GeneratedImage[] ApplyWatermark(GenerationRequest request, GeneratedImage[] images)
    {
        if (request.Watermark is not { } payload)
        {
            return images;
        }

        return [.. images.Select(image => image.Safety is { Blocked: true } ? image : image with
        {
            Image = DwtDctWatermark.Embed(image.Image, payload),
            Parameters = image.Parameters with { Watermark = DwtDctWatermark.MethodName },
        })];
    }

    /// <summary>Runs the checker on every image and acts on its verdict as the request's <see cref="SafetyMode"/> says.</summary>
    private GeneratedImage[] ApplySafety(GenerationRequest request, GeneratedImage[] images, MemoryStrategy memory, CancellationToken cancellationToken)
    {
        var mode = SafetyModeFor(request);
        if (mode == SafetyMode.Off || SafetyChecker is null)
        {
            return images;
        }

        cancellationToken.ThrowIfCancellationRequested();
        Enter(SafetyChecker.Component, memory);
        var flagged = SafetyChecker.Check([.. images.Select(i => i.Image)]);
        Leave(SafetyChecker.Component, memory);
        return [.. images.Select((image, i) =>
        {
            var verdict = new SafetyVerdict(mode, flagged[i]);
            var pixels = !verdict.Flagged ? image.Image : mode switch
            {
                SafetyMode.Blur => ImageOps.ObscuringBlur(image.Image),
                SafetyMode.Block => new RgbImage(image.Image.Width, image.Image.Height, new byte[image.Image.Pixels.Length]),
                _ => image.Image,
            };
            return image with { Image = pixels, Parameters = image.Parameters with { SafetyChecker = verdict.Outcome }, Safety = verdict };
        })];
    }

    private static void RunSteps(DenoisingLoop loop, GenerationRequest request, IScheduler scheduler, int startIndex, float[] latents, int imageLength,
        int latentHeight, int latentWidth, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        using var abort = cancellationToken.Register(loop.Terminate);
        var total = scheduler.Timesteps.Count;
        var source = progress is null ? null : new LatentPreviewSource(latents, imageLength, latentHeight, latentWidth);
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
                    ? source!.Render(0)
                    : null;
                progress.Report(new GenerationProgress(step - startIndex + 1, total - startIndex, preview) { Latents = source });
            }
        }
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

    private (PromptConditioning Conditioning, IReadOnlyList<PromptTruncation> Truncations) EncodePrompts(IReadOnlyList<ImageSpec> images, bool useGuidance)
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
        return (new PromptConditioning(hidden, width), truncations);
    }

    /// <summary>
    /// SDXL's conditioning, as diffusers' StableDiffusionXLPipeline.encode_prompt builds it: each prompt through both
    /// tokenizers and encoders; the hidden states are each encoder's penultimate layer, concatenated along the feature
    /// axis (encoder 1's features first); the pooled <c>text_embeds</c> are encoder 2's projected output. An image
    /// without a negative prompt gets zeros for both when the model forces zeros for empty prompts (diffusers does so
    /// when <c>negative_prompt</c> is None; a request cannot tell None from "", so an empty one counts as absent).
    /// <c>time_ids</c> are (height, width, 0, 0, height, width) for every row: diffusers' defaults, original and target
    /// size the render's, no crop, the same for the unconditional rows.
    /// </summary>
    internal (PromptConditioning Conditioning, IReadOnlyList<PromptTruncation> Truncations) EncodePromptsXl(
        IReadOnlyList<ImageSpec> images, bool useGuidance, int width, int height)
    {
        var texts = new List<(int Index, string Text, bool Negative)>(images.Count * 2);
        if (useGuidance)
        {
            texts.AddRange(images.Select((image, i) => (i, image.NegativePrompt, true)));
        }

        texts.AddRange(images.Select((image, i) => (i, image.Prompt, false)));
        var truncations = new List<PromptTruncation>();
        var rows1 = new List<int[]>(texts.Count);
        var rows2 = new List<int[]>(texts.Count);
        foreach (var (index, text, negative) in texts)
        {
            var first = Tokenizer.Encode(text);
            if (first.Truncated)
            {
                truncations.Add(new PromptTruncation(index, negative, first.DroppedText));
            }

            rows1.Add(first.Ids);
            rows2.Add(Tokenizer2!.Encode(text).Ids);
        }

        var encoder2 = TextEncoder2!;
        var (hidden1, shape1) = TextEncoder.Encode(rows1, TextEncoder.PenultimateHiddenStates)[0];
        var outputs2 = encoder2.Encode(rows2, encoder2.PenultimateHiddenStates, TextEncoder.TextEmbeds);
        var (hidden2, shape2) = outputs2[0];
        var (pooled, pooledShape) = outputs2[1];
        if (shape1[1] != shape2[1])
        {
            throw new ModelFormatException($"SDXL's text encoders disagree on the sequence length ({shape1[1]} and {shape2[1]} tokens).");
        }

        int tokens = checked((int)shape1[1]), width1 = checked((int)shape1[2]), width2 = checked((int)shape2[2]);
        int pooledWidth = checked((int)pooledShape[1]), hiddenWidth = width1 + width2;
        var hidden = new float[texts.Count * tokens * hiddenWidth];
        for (var row = 0; row < texts.Count; row++)
        {
            for (var t = 0; t < tokens; t++)
            {
                var target = hidden.AsSpan(((row * tokens) + t) * hiddenWidth, hiddenWidth);
                hidden1.AsSpan(((row * tokens) + t) * width1, width1).CopyTo(target);
                hidden2.AsSpan(((row * tokens) + t) * width2, width2).CopyTo(target[width1..]);
            }
        }

        var timeIds = new float[texts.Count * PromptConditioning.TimeIdCount];
        var sizeIds = PromptConditioning.SizeConditioning(height, width, 0, 0, height, width);
        for (var row = 0; row < texts.Count; row++)
        {
            sizeIds.CopyTo(timeIds, row * PromptConditioning.TimeIdCount);
            if (texts[row].Negative && texts[row].Text.Length == 0 && Model.ForceZerosForEmptyPrompt)
            {
                hidden.AsSpan(row * tokens * hiddenWidth, tokens * hiddenWidth).Clear();
                pooled.AsSpan(row * pooledWidth, pooledWidth).Clear();
            }
        }

        return (new PromptConditioning(hidden, hiddenWidth, pooled, pooledWidth, timeIds), truncations);
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

        if (request.Safety is { } safety && safety != SafetyMode.Off && SafetyChecker is null)
        {
            throw new ArgumentException(
                $"Safety '{SafetyModes.Name(safety)}' needs a safety checker, and '{Model.Root}' has no {Path.Combine("safety_checker", "model.onnx")}.", nameof(request));
        }

        if (request.Watermark is { } watermark
            && (DwtDctWatermark.PayloadProblem(watermark) ?? DwtDctWatermark.SizeProblem(request.Width, request.Height)) is { } watermarkProblem)
        {
            throw new ArgumentException($"Watermark: {watermarkProblem}", nameof(request));
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
        TextEncoder2?.Component.Dispose();
        Unet.Component.Dispose();
        VaeDecoder.Component.Dispose();
        VaeDecoder.SharedStatisticsComponent.Dispose();
        VaeEncoder.Component.Dispose();
        VaeEncoder.SharedStatisticsComponent.Dispose();
        SafetyChecker?.Dispose();
    }
}
