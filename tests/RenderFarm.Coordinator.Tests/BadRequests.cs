using RenderFarm.Coordinator.Tests.Infrastructure;

namespace RenderFarm.Coordinator.Tests;

/// <summary>
/// One bad request per validation rule (and per way the body can be malformed), each with the field its 400
/// must name. Bodies are JSON merge patches over a valid job, so each case breaks exactly one thing.
/// </summary>
public static class BadRequests
{
    private static readonly string Png = TestPng.Base64;

    public static TheoryData<string, string, string> Cases { get; } = new()
    {
        { "prompt missing", """{"prompt":null}""", "prompt" },
        { "prompt only whitespace", """{"prompt":"   "}""", "prompt" },
        { "prompt too long", $$"""{"prompt":"{{new string('x', 10_001)}}"}""", "prompt" },
        { "negative prompt only whitespace", """{"negativePrompt":"  "}""", "negativePrompt" },
        { "width missing", """{"width":null}""", "width" },
        { "height missing", """{"height":null}""", "height" },
        { "width not a multiple of 8", """{"width":65}""", "width" },
        { "width below the minimum", """{"width":32}""", "width" },
        { "height not a multiple of 8", """{"height":100}""", "height" },
        { "size over the pixel limit", """{"width":4096,"height":4096}""", "width" },
        { "steps missing", """{"steps":null}""", "steps" },
        { "steps zero", """{"steps":0}""", "steps" },
        { "steps over 1000", """{"steps":1001}""", "steps" },
        { "guidance missing", """{"guidanceScale":null}""", "guidanceScale" },
        { "guidance not finite", """{"guidanceScale":"NaN"}""", "guidanceScale" },
        { "guidance infinite", """{"guidanceScale":"Infinity"}""", "guidanceScale" },
        { "guidance too large", """{"guidanceScale":51}""", "guidanceScale" },
        { "sampler missing", """{"sampler":null}""", "sampler" },
        { "sampler unknown", """{"sampler":"warp_drive"}""", "sampler" },
        { "model unknown", """{"model":"sdxl-turbo-nope"}""", "model" },
        { "model empty", """{"model":" "}""", "model" },
        { "seed negative", """{"seed":-1}""", "seed" },
        { "seed above 2^53-1", """{"seed":9007199254740992}""", "seed" },
        { "seed plus count past the largest seed", """{"seed":9007199254740991,"count":2}""", "seed" },
        { "mode unknown", """{"mode":"video"}""", "mode" },
        { "img2img without init image", """{"mode":"img2img"}""", "initImage" },
        { "init image on txt2img", $$"""{"initImage":"{{Png}}"}""", "initImage" },
        { "strength on txt2img", """{"strength":0.5}""", "strength" },
        { "strength above 1", $$"""{"mode":"img2img","initImage":"{{Png}}","strength":1.5}""", "strength" },
        { "strength zero", $$"""{"mode":"img2img","initImage":"{{Png}}","strength":0}""", "strength" },
        { "inpaint without mask", $$"""{"mode":"inpaint","initImage":"{{Png}}"}""", "mask" },
        { "mask on img2img", $$"""{"mode":"img2img","initImage":"{{Png}}","mask":"{{Png}}"}""", "mask" },
        { "init image not base64", """{"mode":"img2img","initImage":"not base64 at all!"}""", "initImage" },
        { "init image not a PNG", """{"mode":"img2img","initImage":"aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEgcG5nIGZpbGUgYXQgYWxsLi4u"}""", "initImage" },
        { "init image truncated", $$"""{"mode":"img2img","initImage":"{{TestPng.TruncatedBase64}}"}""", "initImage" },
        { "mask not a PNG", $$"""{"mode":"inpaint","initImage":"{{Png}}","mask":"aGVsbG8="}""", "mask" },
        { "priority too high", """{"priority":101}""", "priority" },
        { "priority too low", """{"priority":-101}""", "priority" },
        { "count zero", """{"count":0}""", "count" },
        { "count over the limit", $$"""{"count":{{CoordinatorFactory.MaxCount + 1}}}""", "count" },
        { "count with explicit seeds", """{"count":2,"sweep":{"seeds":[1,2]}}""", "count" },
        { "sweep prompts empty", """{"sweep":{"prompts":[]}}""", "sweep.prompts" },
        { "sweep prompt blank", """{"sweep":{"prompts":["a cat","  "]}}""", "sweep.prompts[1]" },
        { "sweep seed negative", """{"sweep":{"seeds":[1,-5]}}""", "sweep.seeds[1]" },
        { "sweep steps out of range", """{"sweep":{"steps":[0]}}""", "sweep.steps[0]" },
        { "sweep guidance out of range", """{"sweep":{"guidanceScales":[99]}}""", "sweep.guidanceScales[0]" },
        { "sweep sampler unknown", """{"sweep":{"samplers":["nope"]}}""", "sweep.samplers[0]" },
        { "sweep over the item limit", """{"count":100,"sweep":{"prompts":["a","b"],"steps":[1,2,3,4,5,6]}}""", "sweep" },
        { "width of the wrong type", """{"width":"wide"}""", "width" },
        { "sweep seed of the wrong type", """{"sweep":{"seeds":[1,"two"]}}""", "sweep.seeds[1]" },
    };

    /// <summary>Bodies that are not a job object at all.</summary>
    public static TheoryData<string, string> MalformedBodies { get; } = new()
    {
        { "not JSON", "{not json" },
        { "empty", "" },
        { "null", "null" },
        { "an array", "[1,2,3]" },
    };
}
