using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Tests.Infrastructure;
using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Coordinator.Tests.Automatic1111;

/// <summary>
/// The AUTOMATIC1111-compatible routes of the coordinator on the real PostgreSQL, with no worker (the bus probe takes
/// the work units): errors, the model and option routes, png-info, the wait timeout and interrupt. Real renders through
/// these routes are tested against embedded <c>serve</c> (RenderFarm.Cli.Tests, Automatic1111ContractTests).
/// </summary>
public sealed class Automatic1111ApiTests(PostgresCoordinatorFixture fixture) : IClassFixture<PostgresCoordinatorFixture>
{
    private const string Minimal = """{"prompt": "a red fox", "steps": 2, "width": 64, "height": 64}""";

    private static CancellationToken Timeout(int seconds = 60) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    public static TheoryData<string, string, string> BadFields { get; } = new()
    {
        // body, route, the field FastAPI's loc names (after "body")
        { """{"prompt": "x", "steps": "many"}""", "txt2img", "steps" },
        { """{"prompt": "x", "width": 100, "height": 64, "steps": 2}""", "txt2img", "width" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 0}""", "txt2img", "steps" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "cfg_scale": 80}""", "txt2img", "cfg_scale" },
        { """{"prompt": "", "width": 64, "height": 64, "steps": 2}""", "txt2img", "prompt" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "seed": -5}""", "txt2img", "seed" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "batch_size": 0}""", "txt2img", "batch_size" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "restore_faces": true}""", "txt2img", "restore_faces" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "tiling": true}""", "txt2img", "tiling" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "script_name": "x/y/z plot"}""", "txt2img", "script_name" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "alwayson_scripts": {"controlnet": {"args": []}}}""", "txt2img", "alwayson_scripts" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "override_settings": {"sd_model_checkpoint": "sdxl-nope [abc123]"}}""", "txt2img", "override_settings" },
        { """{"prompt": "x", "width": 128, "height": 128, "steps": 2, "enable_hr": true, "hr_scale": 0.75}""", "txt2img", "width" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "enable_hr": true, "hr_scale": 0}""", "txt2img", "hr_scale" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "enable_hr": true, "hr_scale": 0.5}""", "txt2img", "hr_scale" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "enable_hr": true, "hr_prompt": "something else"}""", "txt2img", "hr_prompt" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "enable_hr": true, "batch_size": 65}""", "txt2img", "batch_size" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "batch_size": 100, "n_iter": 2}""", "txt2img", "batch_size" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2}""", "img2img", "init_images" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "init_images": ["not base64!"]}""", "img2img", "init_images" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "init_images": ["aGVsbG8="]}""", "img2img", "init_images" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "denoising_strength": 1.5, "init_images": ["__PNG__"]}""", "img2img", "denoising_strength" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "init_images": ["__PNG__", "__PNG__"]}""", "img2img", "init_images" },
        { """{"prompt": "x", "width": 64, "height": 64, "steps": 2, "init_images": ["__PNG__"], "mask": "%%%"}""", "img2img", "mask" },
        { """{"prompt": "x", "steps": 2, """, "txt2img", "" },
    };

    [Theory]
    [MemberData(nameof(BadFields))]
    public async Task A_bad_field_gets_422_in_fastapi_shape_naming_the_a1111_field(string body, string route, string field)
    {
        using var answer = await PostAsync(route, body.Replace("__PNG__", TestPng.Base64, StringComparison.Ordinal));

        var text = await answer.Content.ReadAsStringAsync();
        answer.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity, text);
        var detail = JsonNode.Parse(text)!["detail"]!.AsArray();
        detail.ShouldNotBeEmpty();
        detail.ShouldAllBe(d => d!["loc"]![0]!.GetValue<string>() == "body" && d["msg"]!.GetValue<string>().Length > 0 && d["type"] != null);
        var fields = detail.Select(d => d!["loc"]!.AsArray().Count > 1 ? d!["loc"]![1]!.ToString() : "").ToList();
        fields.ShouldContain(field, text);
    }

    [Theory]
    [InlineData("""{"prompt": "x", "steps": 2, "width": 64, "height": 64, "sampler_name": "Heun"}""", "Sampler not found")]
    [InlineData("""{"prompt": "x", "steps": 2, "width": 64, "height": 64, "sampler_name": "Euler a", "scheduler": "Karras"}""", "Karras")]
    [InlineData("""{"prompt": "x", "steps": 2, "width": 64, "height": 64, "sampler_name": "Euler", "scheduler": "Exponential"}""", "Scheduler not found")]
    public async Task An_unknown_sampler_or_scheduler_gets_400_with_a1111s_error_body(string body, string detail)
    {
        using var answer = await PostAsync("txt2img", body);

        var text = await answer.Content.ReadAsStringAsync();
        answer.StatusCode.ShouldBe(HttpStatusCode.BadRequest, text);
        var error = JsonNode.Parse(text)!;
        error["error"]!.GetValue<string>().ShouldBe("HTTPException");
        error["detail"]!.GetValue<string>().ShouldContain(detail);
        error["errors"]!.GetValue<string>().ShouldStartWith("400: ");
    }

    [Fact]
    public async Task A_call_that_outlasts_the_wait_timeout_answers_504_naming_its_job_which_stays_queued_in_the_job_list()
    {
        await using var shortWait = fixture.Factory.WithWebHostBuilder(b => b.UseSetting("Coordinator:Automatic1111:WaitTimeout", "00:00:01"));
        using var client = shortWait.CreateClient();

        using var answer = await client.PostAsync("/sdapi/v1/txt2img", Json(Minimal), Timeout());

        var text = await answer.Content.ReadAsStringAsync();
        answer.StatusCode.ShouldBe(HttpStatusCode.GatewayTimeout, text);
        var error = JsonNode.Parse(text)!;
        error["error"]!.GetValue<string>().ShouldBe("TimeoutError");
        var jobId = error["job_ids"]![0]!.GetValue<Guid>();
        error["detail"]!.GetValue<string>().ShouldContain(jobId.ToString());
        var job = await client.GetFromJsonAsync<JsonObject>($"/v1/jobs/{jobId}", Timeout());
        job!["state"]!.GetValue<string>().ShouldBe("Queued");
        var listed = await client.GetFromJsonAsync<JsonObject>("/v1/jobs?state=Queued&pageSize=500", Timeout());
        listed!["items"]!.AsArray().Select(j => j!["id"]!.GetValue<Guid>()).ShouldContain(jobId);
    }

    [Fact]
    public async Task Interrupt_cancels_the_waiting_calls_job_through_the_job_cancel_path_and_the_call_answers()
    {
        var call = fixture.Client.PostAsync("/sdapi/v1/txt2img", Json(Minimal), Timeout());
        var jobId = await CurrentTaskAsync();

        using var interrupt = await fixture.Client.PostAsync("/sdapi/v1/interrupt", null, Timeout());
        using var answer = await call;

        interrupt.StatusCode.ShouldBe(HttpStatusCode.OK);
        var text = await answer.Content.ReadAsStringAsync();
        answer.StatusCode.ShouldBe(HttpStatusCode.OK, text);
        var response = JsonNode.Parse(text)!;
        response["images"]!.AsArray().ShouldBeEmpty();
        JsonNode.Parse(response["info"]!.GetValue<string>())!["job_ids"]![0]!.GetValue<Guid>().ShouldBe(jobId);
        var job = await fixture.Client.GetFromJsonAsync<JsonObject>($"/v1/jobs/{jobId}", Timeout());
        job!["state"]!.GetValue<string>().ShouldBe("Canceled");
        job["cancelReason"]!.GetValue<string>().ShouldContain("/sdapi/v1/interrupt");
        await WaitUntilAsync(() => fixture.Probe.WasCanceled(jobId));
        var idle = await fixture.Client.GetFromJsonAsync<JsonObject>("/sdapi/v1/progress", Timeout());
        idle!["progress"]!.GetValue<double>().ShouldBe(0);
        idle["state"]!["job_count"]!.GetValue<int>().ShouldBe(0);
    }

    [Fact]
    public async Task The_checkpoint_set_through_options_is_read_back_and_picks_the_model_of_later_calls()
    {
        await using var shortWait = fixture.Factory.WithWebHostBuilder(b => b.UseSetting("Coordinator:Automatic1111:WaitTimeout", "00:00:01"));
        using var client = shortWait.CreateClient();
        try
        {
            var before = await client.GetFromJsonAsync<JsonObject>("/sdapi/v1/options", Timeout());
            using var set = await client.PostAsync("/sdapi/v1/options", Json("""{"sd_model_checkpoint": "sd15 [0123456789]", "CLIP_stop_at_last_layers": 2}"""), Timeout());
            var after = await client.GetFromJsonAsync<JsonObject>("/sdapi/v1/options", Timeout());
            using var call = await client.PostAsync("/sdapi/v1/txt2img", Json(Minimal), Timeout());
            using var unknown = await client.PostAsync("/sdapi/v1/options", Json("""{"sd_model_checkpoint": "no-such-model"}"""), Timeout());

            before!["sd_model_checkpoint"]!.GetValue<string>().ShouldBe("tiny-sd");
            set.StatusCode.ShouldBe(HttpStatusCode.OK);
            after!["sd_model_checkpoint"]!.GetValue<string>().ShouldBe("sd15");
            var jobId = JsonNode.Parse(await call.Content.ReadAsStringAsync())!["job_ids"]![0]!.GetValue<Guid>();
            var job = await client.GetFromJsonAsync<JsonObject>($"/v1/jobs/{jobId}", Timeout());
            job!["model"]!.GetValue<string>().ShouldBe("sd15");
            unknown.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
            JsonNode.Parse(await unknown.Content.ReadAsStringAsync())!["detail"]!.GetValue<string>().ShouldContain("no-such-model");
        }
        finally
        {
            (await client.PostAsync("/sdapi/v1/options", Json("""{"sd_model_checkpoint": "tiny-sd"}"""), Timeout())).Dispose();
        }
    }

    [Fact]
    public async Task Samplers_schedulers_and_models_list_the_farms_under_a1111_names()
    {
        var samplers = (await fixture.Client.GetFromJsonAsync<JsonArray>("/sdapi/v1/samplers", Timeout()))!;
        var models = (await fixture.Client.GetFromJsonAsync<JsonArray>("/sdapi/v1/sd-models", Timeout()))!;
        var schedulers = (await fixture.Client.GetFromJsonAsync<JsonArray>("/sdapi/v1/schedulers", Timeout()))!;

        samplers.Select(s => s!["name"]!.GetValue<string>())
            .ShouldBe(["Euler a", "Euler", "LMS", "DDIM", "PLMS", "DPM++ 2M", "DPM++ 2M Karras", "LCM"]);
        samplers[0]!["aliases"]!.AsArray().Select(a => a!.GetValue<string>()).ShouldContain("k_euler_a");
        models.Select(m => m!["title"]!.GetValue<string>()).ShouldBe(["tiny-sd", "sd15"]);
        models[0]!["model_name"]!.GetValue<string>().ShouldBe("tiny-sd");
        schedulers.Select(s => s!["label"]!.GetValue<string>()).ShouldBe(["Automatic", "Karras"]);
    }

    [Fact]
    public async Task Png_info_reads_the_parameters_chunk_into_a1111s_keys_and_refuses_bad_images_with_400()
    {
        var text = new GenerationParameters
        {
            Prompt = "a red fox, snow",
            NegativePrompt = "blurry",
            Steps = 20,
            Sampler = "dpmpp_2m_karras",
            GuidanceScale = 7,
            Seed = 42,
            Width = 512,
            Height = 768,
            Model = "tiny-sd",
        }.Format();
        var png = PngCodec.InsertTextChunk(TestPng.Bytes, PngCodec.ParametersKeyword, text);

        using var answer = await PostAsync("png-info", new JsonObject { ["image"] = "data:image/png;base64," + Convert.ToBase64String(png) }.ToJsonString());
        using var notBase64 = await PostAsync("png-info", """{"image": "%%%"}""");
        var damaged = TestPng.Bytes.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(damaged.AsSpan(33), 0x7FFFFFF0); // the chunk after IHDR claims 2 GiB
        using var damagedAnswer = await PostAsync("png-info", new JsonObject { ["image"] = Convert.ToBase64String(damaged) }.ToJsonString());

        var info = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!;
        info["info"]!.GetValue<string>().ShouldBe(text);
        var parameters = info["parameters"]!;
        parameters["Prompt"]!.GetValue<string>().ShouldBe("a red fox, snow");
        parameters["Negative prompt"]!.GetValue<string>().ShouldBe("blurry");
        parameters["Steps"]!.GetValue<string>().ShouldBe("20");
        parameters["Sampler"]!.GetValue<string>().ShouldBe("DPM++ 2M Karras");
        parameters["CFG scale"]!.GetValue<string>().ShouldBe("7");
        parameters["Seed"]!.GetValue<string>().ShouldBe("42");
        (parameters["Size-1"]!.GetValue<string>(), parameters["Size-2"]!.GetValue<string>()).ShouldBe(("512", "768"));
        info["items"]!.AsObject().ShouldBeEmpty();
        notBase64.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        damagedAnswer.StatusCode.ShouldBe(HttpStatusCode.BadRequest, await damagedAnswer.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Progress_answers_the_running_items_latest_preview_as_current_image_unless_skipped()
    {
        var call = fixture.Client.PostAsync("/sdapi/v1/txt2img", Json(Minimal), Timeout());
        var jobId = await CurrentTaskAsync();
        var item = (await fixture.Probe.NextUnitAsync(jobId)).Items.Single();
        await fixture.Probe.Bus.Publish(new ItemStarted(item.ItemId, jobId, 1, "worker-a", DateTimeOffset.UtcNow));
        byte[] jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 7, 7, 7, 0xFF, 0xD9];
        await fixture.Probe.Bus.Publish(new ItemPreviewed(item.ItemId, jobId, 1, item.Index, 1, 2, "image/jpeg", jpeg, 8, 8, DateTimeOffset.UtcNow));

        var expected = Convert.ToBase64String(jpeg);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonObject? progress;
        do
        {
            await Task.Delay(50);
            progress = await fixture.Client.GetFromJsonAsync<JsonObject>("/sdapi/v1/progress", Timeout());
        }
        while (progress!["current_image"]?.GetValue<string>() != expected && DateTime.UtcNow < deadline);
        var skipped = await fixture.Client.GetFromJsonAsync<JsonObject>("/sdapi/v1/progress?skip_current_image=true", Timeout());
        using var interrupt = await fixture.Client.PostAsync("/sdapi/v1/interrupt", null, Timeout());
        using var answer = await call;

        (progress["current_image"]?.GetValue<string>()).ShouldBe(expected, progress.ToJsonString());
        progress["current_task"]!.GetValue<string>().ShouldBe(jobId.ToString());
        skipped!["current_image"].ShouldBeNull();
        skipped["current_task"]!.GetValue<string>().ShouldBe(jobId.ToString());
    }

    private Task<HttpResponseMessage> PostAsync(string route, string body) =>
        fixture.Client.PostAsync($"/sdapi/v1/{route}", Json(body), Timeout());

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    // The job of the A1111 call in flight, as /sdapi/v1/progress names it once the call has submitted it.
    private async Task<Guid> CurrentTaskAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var progress = await fixture.Client.GetFromJsonAsync<JsonObject>("/sdapi/v1/progress", Timeout());
            progress!["current_image"].ShouldBeNull();
            if (progress["current_task"]?.GetValue<string>() is { } task)
            {
                return Guid.Parse(task);
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("No A1111 call showed up in /sdapi/v1/progress within 30 s.");
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("The condition did not hold within 30 s.");
            }

            await Task.Delay(50);
        }
    }
}
