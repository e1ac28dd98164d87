using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using RenderFarm.Diffusion.Imaging;
using SkiaSharp;

namespace RenderFarm.Cli.Tests.Automatic1111;

/// <summary>
/// The AUTOMATIC1111-compatible API of embedded <c>renderfarm serve</c>, rendering for real on the tiny model with
/// in-process workers. Request bodies are shaped as A1111 clients send them (the field sets of the A1111 web UI's own
/// API models and of popular client libraries such as sdwebuiapi), shrunk to 64×64 and a few steps for speed.
/// </summary>
public sealed class Automatic1111ContractTests(EmbeddedFarmFixture farm) : IClassFixture<EmbeddedFarmFixture>
{
    private static CancellationToken Timeout(int seconds = 180) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    private HttpClient Client() => new() { BaseAddress = farm.Serve.Address, Timeout = TimeSpan.FromMinutes(5) };

    [Fact]
    public async Task A_minimal_txt2img_answers_one_png_whose_parameters_parse_back_to_the_request_and_is_a_farm_job()
    {
        using var http = Client();
        const string body = """{"prompt": "a lighthouse at dusk", "steps": 2, "width": 64, "height": 64}""";

        var (response, images, info) = await PostAsync(http, "txt2img", body);

        images.Count.ShouldBe(1);
        var seed = info["seed"]!.GetValue<long>();
        info["all_seeds"]!.AsArray().Select(s => s!.GetValue<long>()).ShouldBe([seed]);
        info["all_prompts"]!.AsArray().Select(p => p!.GetValue<string>()).ShouldBe(["a lighthouse at dusk"]);
        info["infotexts"]!.AsArray().Count.ShouldBe(1);
        response["parameters"]!["sampler_name"]!.GetValue<string>().ShouldBe("Euler");
        response["parameters"]!["steps"]!.GetValue<int>().ShouldBe(2);
        SizeOf(images[0]).ShouldBe((64, 64));
        var parameters = ParametersOf(images[0]);
        parameters.Prompt.ShouldBe("a lighthouse at dusk");
        parameters.NegativePrompt.ShouldBe("");
        parameters.Steps.ShouldBe(2);
        parameters.Sampler.ShouldBe("euler");
        parameters.GuidanceScale.ShouldBe(7.0);
        parameters.Seed.ShouldBe((ulong)seed);
        (parameters.Width, parameters.Height).ShouldBe((64, 64));
        info["infotexts"]![0]!.GetValue<string>().ShouldBe(parameters.Format());

        var jobId = info["job_ids"]![0]!.GetValue<Guid>();
        var listed = await http.GetFromJsonAsync<JsonObject>("/v1/jobs?state=Succeeded&pageSize=500", Timeout());
        listed!["items"]!.AsArray().Select(j => j!["id"]!.GetValue<Guid>()).ShouldContain(jobId);
        var job = await http.GetFromJsonAsync<JsonObject>($"/v1/jobs/{jobId}", Timeout());
        job!["seed"]!.GetValue<long>().ShouldBe(seed);
    }

    [Fact]
    public async Task A_full_txt2img_with_hires_fix_renders_the_upscaled_image_through_a_farm_hires_job()
    {
        using var http = Client();
        // Every field the sdwebuiapi client's txt2img sends, with hires fix on.
        const string body = """
            {
              "enable_hr": true, "denoising_strength": 0.5, "firstphase_width": 0, "firstphase_height": 0,
              "hr_scale": 2, "hr_upscaler": "Latent", "hr_second_pass_steps": 0, "hr_resize_x": 0, "hr_resize_y": 0,
              "hr_checkpoint_name": null, "hr_sampler_name": null, "hr_prompt": "", "hr_negative_prompt": "",
              "prompt": "a castle on a hill, detailed", "styles": [], "seed": 1234, "subseed": -1, "subseed_strength": 0.0,
              "seed_resize_from_h": 0, "seed_resize_from_w": 0, "sampler_name": "DPM++ 2M", "scheduler": "Karras",
              "batch_size": 1, "n_iter": 1, "steps": 3, "cfg_scale": 6.5, "width": 64, "height": 64,
              "restore_faces": false, "tiling": false, "do_not_save_samples": false, "do_not_save_grid": false,
              "negative_prompt": "blurry, lowres", "eta": 1.0, "s_min_uncond": 0, "s_churn": 0, "s_tmax": 0, "s_tmin": 0, "s_noise": 1,
              "override_settings": {"sd_model_checkpoint": "tiny-sd", "CLIP_stop_at_last_layers": 1},
              "override_settings_restore_afterwards": true, "script_args": [], "sampler_index": "Euler", "script_name": null,
              "send_images": true, "save_images": false, "alwayson_scripts": {}
            }
            """;

        var (response, images, info) = await PostAsync(http, "txt2img", body);

        images.Count.ShouldBe(1);
        info["seed"]!.GetValue<long>().ShouldBe(1234);
        info["all_seeds"]!.AsArray().Select(s => s!.GetValue<long>()).ShouldBe([1234L]);
        (info["width"]!.GetValue<int>(), info["height"]!.GetValue<int>()).ShouldBe((64, 64));
        response["parameters"]!["sampler_name"]!.GetValue<string>().ShouldBe("DPM++ 2M");
        response["parameters"]!["hr_second_pass_steps"]!.GetValue<int>().ShouldBe(3);
        SizeOf(images[0]).ShouldBe((128, 128));
        var text = ChunkOf(images[0]);
        text.ShouldContain("Hires base: 64x64");
        var parameters = GenerationParameters.Parse(text);
        parameters.Prompt.ShouldBe("a castle on a hill, detailed");
        parameters.NegativePrompt.ShouldBe("blurry, lowres");
        parameters.Steps.ShouldBe(3);
        parameters.Sampler.ShouldBe("dpmpp_2m_karras");
        parameters.GuidanceScale.ShouldBe(6.5);
        parameters.Seed.ShouldBe(1234UL);
        (parameters.Width, parameters.Height).ShouldBe((128, 128));
        parameters.DenoisingStrength.ShouldBe(0.5);
        parameters.Model.ShouldBe("tiny-sd");

        var jobId = info["job_ids"]![0]!.GetValue<Guid>();
        var job = await http.GetFromJsonAsync<JsonObject>($"/v1/jobs/{jobId}", Timeout());
        job!["mode"]!.GetValue<string>().ShouldBe("hires");
        job["state"]!.GetValue<string>().ShouldBe("Succeeded");
    }

    [Fact]
    public async Task An_img2img_inpaint_with_data_url_init_image_and_mask_renders_at_the_requested_size()
    {
        using var http = Client();
        // A browser client's inpaint: the init image a JPEG data URL, the mask a PNG data URL, A1111's inpaint fields.
        var init = "data:image/jpeg;base64," + Convert.ToBase64String(Encode(Gradient(96, 80), SKEncodedImageFormat.Jpeg));
        var mask = "data:image/png;base64," + Convert.ToBase64String(Encode(HalfWhite(96, 80), SKEncodedImageFormat.Png));
        var body = new JsonObject
        {
            ["init_images"] = new JsonArray(init),
            ["mask"] = mask,
            ["mask_blur"] = 4,
            ["inpainting_fill"] = 1,
            ["inpaint_full_res"] = false,
            ["inpaint_full_res_padding"] = 32,
            ["inpainting_mask_invert"] = 0,
            ["resize_mode"] = 0,
            ["denoising_strength"] = 0.6,
            ["prompt"] = "a red door",
            ["negative_prompt"] = "text",
            ["seed"] = 77,
            ["sampler_name"] = "Euler a",
            ["batch_size"] = 1,
            ["n_iter"] = 1,
            ["steps"] = 4,
            ["cfg_scale"] = 5.5,
            ["width"] = 64,
            ["height"] = 64,
            ["include_init_images"] = false,
        }.ToJsonString();

        var (response, images, info) = await PostAsync(http, "img2img", body);

        images.Count.ShouldBe(1);
        info["all_seeds"]!.AsArray().Select(s => s!.GetValue<long>()).ShouldBe([77L]);
        info["is_using_inpainting_conditioning"]!.GetValue<bool>().ShouldBeTrue();
        response["parameters"]!["init_images"].ShouldBeNull();
        SizeOf(images[0]).ShouldBe((64, 64));
        var parameters = ParametersOf(images[0]);
        parameters.Prompt.ShouldBe("a red door");
        parameters.NegativePrompt.ShouldBe("text");
        parameters.Steps.ShouldBe(4);
        parameters.Sampler.ShouldBe("euler_a");
        parameters.GuidanceScale.ShouldBe(5.5);
        parameters.Seed.ShouldBe(77UL);
        (parameters.Width, parameters.Height).ShouldBe((64, 64));
        parameters.DenoisingStrength.ShouldBe(0.6);
        var job = await http.GetFromJsonAsync<JsonObject>($"/v1/jobs/{info["job_ids"]![0]!.GetValue<Guid>()}", Timeout());
        job!["mode"]!.GetValue<string>().ShouldBe("inpaint");
    }

    [Fact]
    public async Task A_batch_with_n_iter_answers_batch_size_times_n_iter_images_with_consecutive_seeds()
    {
        using var http = Client();
        const string body = """
            {"prompt": "a field of sunflowers", "negative_prompt": "people", "seed": 500, "sampler_name": "DDIM",
             "batch_size": 2, "n_iter": 2, "steps": 2, "cfg_scale": 7, "width": 64, "height": 64, "send_images": true}
            """;

        var (_, images, info) = await PostAsync(http, "txt2img", body);

        images.Count.ShouldBe(4);
        var seeds = info["all_seeds"]!.AsArray().Select(s => s!.GetValue<long>()).ToList();
        seeds.ShouldBe([500L, 501L, 502L, 503L]);
        info["seed"]!.GetValue<long>().ShouldBe(500);
        info["all_prompts"]!.AsArray().Count.ShouldBe(4);
        for (var i = 0; i < images.Count; i++)
        {
            SizeOf(images[i]).ShouldBe((64, 64));
            var parameters = ParametersOf(images[i]);
            parameters.Seed.ShouldBe((ulong)seeds[i]);
            parameters.Prompt.ShouldBe("a field of sunflowers");
            parameters.NegativePrompt.ShouldBe("people");
            parameters.Sampler.ShouldBe("ddim");
            parameters.Steps.ShouldBe(2);
            parameters.GuidanceScale.ShouldBe(7);
            info["infotexts"]![i]!.GetValue<string>().ShouldBe(parameters.Format());
        }
    }

    [Fact]
    public async Task A_dropped_request_does_not_cancel_its_job_which_finishes_with_all_its_images()
    {
        using var http = Client();
        const string body = """{"prompt": "a slow sunrise", "steps": 20, "width": 64, "height": 64, "batch_size": 12, "seed": 9}""";
        using var abort = new CancellationTokenSource();
        var call = http.PostAsync("/sdapi/v1/txt2img", new StringContent(body, Encoding.UTF8, "application/json"), abort.Token);

        var jobId = await CurrentTaskAsync(http);
        await abort.CancelAsync();
        await Should.ThrowAsync<TaskCanceledException>(() => call);

        var job = await WaitFinalAsync(http, jobId);
        job["state"]!.GetValue<string>().ShouldBe("Succeeded");
        job["images"]!.AsArray().Count.ShouldBe(12);
    }

    [Fact]
    public async Task Interrupt_cancels_the_running_call_whose_answer_keeps_the_images_finished_so_far()
    {
        using var http = Client();
        const string body = """{"prompt": "an endless staircase", "steps": 40, "width": 64, "height": 64, "batch_size": 80, "seed": 3}""";
        var call = http.PostAsync("/sdapi/v1/txt2img", new StringContent(body, Encoding.UTF8, "application/json"), Timeout());

        var jobId = await CurrentTaskAsync(http);
        using var interrupt = await http.PostAsync("/sdapi/v1/interrupt", null, Timeout());
        using var answer = await call;

        interrupt.StatusCode.ShouldBe(HttpStatusCode.OK);
        answer.StatusCode.ShouldBe(HttpStatusCode.OK, await answer.Content.ReadAsStringAsync());
        var response = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!;
        var job = await WaitFinalAsync(http, jobId);
        job["state"]!.GetValue<string>().ShouldBe("Canceled");
        job["cancelReason"]!.GetValue<string>().ShouldContain("interrupt");
        response["images"]!.AsArray().Count.ShouldBe(job["images"]!.AsArray().Count);
        response["images"]!.AsArray().Count.ShouldBeLessThan(80);
    }

    private static async Task<(JsonNode Response, List<string> Images, JsonNode Info)> PostAsync(HttpClient http, string route, string body)
    {
        using var answer = await http.PostAsync($"/sdapi/v1/{route}", new StringContent(body, Encoding.UTF8, "application/json"), Timeout());
        var text = await answer.Content.ReadAsStringAsync();
        answer.StatusCode.ShouldBe(HttpStatusCode.OK, text);
        var response = JsonNode.Parse(text)!;
        response.AsObject().Select(p => p.Key).ShouldBe(["images", "parameters", "info"], ignoreOrder: true);
        var images = response["images"]!.AsArray().Select(i => i!.GetValue<string>()).ToList();
        var info = JsonNode.Parse(response["info"]!.GetValue<string>())!;
        info["infotexts"]!.AsArray().Count.ShouldBe(images.Count);
        return (response, images, info);
    }

    // The job of the A1111 call in flight, as /sdapi/v1/progress names it once the call has submitted it.
    private static async Task<Guid> CurrentTaskAsync(HttpClient http)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var progress = await http.GetFromJsonAsync<JsonObject>("/sdapi/v1/progress?skip_current_image=true", Timeout());
            progress!["current_image"].ShouldBeNull();
            if (progress["current_task"]?.GetValue<string>() is { } task)
            {
                progress["state"]!["job_count"]!.GetValue<int>().ShouldBeGreaterThan(0);
                return Guid.Parse(task);
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("No A1111 call showed up in /sdapi/v1/progress within 60 s.");
    }

    private static async Task<JsonObject> WaitFinalAsync(HttpClient http, Guid jobId)
    {
        var cancellation = Timeout();
        while (true)
        {
            var job = await http.GetFromJsonAsync<JsonObject>($"/v1/jobs/{jobId}", cancellation);
            if (job!["state"]!.GetValue<string>() is "Succeeded" or "CompletedWithErrors" or "Failed" or "Canceled")
            {
                return job;
            }

            await Task.Delay(200, cancellation);
        }
    }

    private static string ChunkOf(string base64) => PngCodec.ReadTextChunks(Convert.FromBase64String(base64))[PngCodec.ParametersKeyword];

    private static GenerationParameters ParametersOf(string base64) => GenerationParameters.Parse(ChunkOf(base64));

    private static (int Width, int Height) SizeOf(string base64)
    {
        var png = Convert.FromBase64String(base64);
        return (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
    }

    private static RgbImage Gradient(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i * 7 % 256);
        }

        return new RgbImage(width, height, pixels);
    }

    private static RgbImage HalfWhite(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            Array.Fill(pixels, (byte)255, y * width * 3, width * 3 / 2);
        }

        return new RgbImage(width, height, pixels);
    }

    private static byte[] Encode(RgbImage image, SKEncodedImageFormat format)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (var y = 0; y < image.Height; y++)
        {
            for (var x = 0; x < image.Width; x++)
            {
                var i = (y * image.Width + x) * 3;
                bitmap.SetPixel(x, y, new SKColor(image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]));
            }
        }

        using var data = bitmap.Encode(format, 90);
        return data.ToArray();
    }
}
