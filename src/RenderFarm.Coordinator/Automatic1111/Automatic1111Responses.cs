using System.Text.Json.Serialization;

namespace RenderFarm.Coordinator.Automatic1111;

// Response shapes of the A1111 routes the farm serves, field for field as A1111's API models name them (snake_case).

/// <summary>The answer of txt2img and img2img.</summary>
/// <param name="Images">Base64 PNGs (no data-URL prefix), each with its <c>parameters</c> text chunk.</param>
/// <param name="Parameters">The request as understood: A1111 defaults filled in, the sampler under its A1111 name, images left out.</param>
/// <param name="Info">A JSON document in a string, as A1111 sends it: seed, all_seeds, all_prompts, infotexts, …</param>
public sealed record ImagesResponse(IReadOnlyList<string> Images, object Parameters, string Info);

/// <summary>The JSON inside <see cref="ImagesResponse.Info"/>; the farm adds <c>job_ids</c> so a client can find its jobs.</summary>
public sealed record GenerationInfo(
    string Prompt,
    IReadOnlyList<string> AllPrompts,
    string NegativePrompt,
    IReadOnlyList<string> AllNegativePrompts,
    long Seed,
    IReadOnlyList<long> AllSeeds,
    long Subseed,
    IReadOnlyList<long> AllSubseeds,
    double SubseedStrength,
    int Width,
    int Height,
    string SamplerName,
    double CfgScale,
    int Steps,
    int BatchSize,
    bool RestoreFaces,
    string? FaceRestorationModel,
    string SdModelName,
    string? SdModelHash,
    int SeedResizeFromW,
    int SeedResizeFromH,
    double? DenoisingStrength,
    IReadOnlyDictionary<string, object> ExtraGenerationParams,
    int IndexOfFirstImage,
    IReadOnlyList<string> Infotexts,
    IReadOnlyList<string> Styles,
    string JobTimestamp,
    int ClipSkip,
    bool IsUsingInpaintingConditioning,
    string Version,
    IReadOnlyList<Guid> JobIds);

/// <summary><c>GET /sdapi/v1/progress</c>.</summary>
public sealed record ProgressResponse(
    double Progress,
    double EtaRelative,
    ProgressState State,
    string? CurrentImage,
    string? Textinfo,
    string? CurrentTask);

/// <summary>A1111's <c>state</c> object: counts are images (farm items) of the A1111 requests in flight.</summary>
public sealed record ProgressState(
    bool Skipped,
    bool Interrupted,
    bool StoppingGeneration,
    string Job,
    int JobCount,
    string JobTimestamp,
    int JobNo,
    int SamplingStep,
    int SamplingSteps);

/// <summary>One entry of <c>GET /sdapi/v1/samplers</c>.</summary>
public sealed record SamplerItem(string Name, IReadOnlyList<string> Aliases, IReadOnlyDictionary<string, string> Options);

/// <summary>One entry of <c>GET /sdapi/v1/schedulers</c> (A1111 1.9+): <c>default_rho</c> -1 means the sampler's own.</summary>
public sealed record SchedulerItem(string Name, string Label, IReadOnlyList<string>? Aliases, double DefaultRho, bool NeedInnerModel);

/// <summary>One entry of <c>GET /sdapi/v1/sd-models</c>.</summary>
public sealed record SdModelItem(string Title, string ModelName, string? Hash, string? Sha256, string Filename, string? Config);

/// <summary><c>POST /sdapi/v1/png-info</c>: the parameters text, the other text chunks, and the text parsed into keys.</summary>
public sealed record PngInfoResponse(string Info, IReadOnlyDictionary<string, string> Items, IReadOnlyDictionary<string, string> Parameters);

/// <summary>The error body A1111's exception handler writes (<c>error</c>, <c>detail</c>, <c>body</c>, <c>errors</c>).</summary>
/// <param name="Error">The kind of error (A1111 writes the exception's type name).</param>
/// <param name="Detail">What went wrong and what to do, in words.</param>
/// <param name="Body">Kept empty, as A1111 does for its own errors.</param>
/// <param name="Errors">"status: detail".</param>
/// <param name="JobIds">The farm's jobs the failed call created, when it created any: they are not lost.</param>
public sealed record Automatic1111Error(
    string Error,
    string Detail,
    string Body,
    string Errors,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<Guid>? JobIds = null);

/// <summary>FastAPI's request-validation answer (422): <c>{"detail": [{"loc": ["body", "steps"], "msg": "…", "type": "…"}]}</c>.</summary>
public sealed record ValidationErrorResponse(IReadOnlyList<ValidationErrorItem> Detail);

/// <summary>One entry of <see cref="ValidationErrorResponse"/>.</summary>
public sealed record ValidationErrorItem(IReadOnlyList<object> Loc, string Msg, string Type);
