using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RenderFarm.Coordinator.Tests.Infrastructure;

/// <summary>Small helpers over the coordinator's HTTP API.</summary>
internal static class JobsClient
{
    /// <summary>A valid, small txt2img job; tests patch fields into it.</summary>
    public static JsonObject ValidJob(string? prompt = null) => new()
    {
        ["prompt"] = prompt ?? "a red fox in the snow",
        ["width"] = 64,
        ["height"] = 64,
        ["steps"] = 4,
        ["guidanceScale"] = 7.5,
        ["sampler"] = "euler",
    };

    /// <summary>Applies a JSON merge patch (RFC 7386: null removes a field) to <see cref="ValidJob"/>.</summary>
    public static string Patched(string patch)
    {
        var job = ValidJob();
        foreach (var (name, value) in JsonNode.Parse(patch)!.AsObject())
        {
            if (value is null)
            {
                job.Remove(name);
            }
            else
            {
                job[name] = value.DeepClone();
            }
        }

        return job.ToJsonString();
    }

    public static Task<HttpResponseMessage> PostRawAsync(this HttpClient client, string json, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/jobs")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        return client.SendAsync(request);
    }

    /// <summary>Submits a job that must be accepted; returns its JSON.</summary>
    public static async Task<JsonElement> SubmitAsync(this HttpClient client, JsonObject job, string? idempotencyKey = null)
    {
        using var response = await client.PostRawAsync(job.ToJsonString(), idempotencyKey);
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).ShouldBe(202, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static async Task<JsonElement> GetJobAsync(this HttpClient client, Guid jobId)
    {
        using var response = await client.GetAsync($"/v1/jobs/{jobId}");
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).Clone();
    }

    /// <summary>Polls the job until <paramref name="done"/> holds, failing with the last state seen.</summary>
    public static async Task<JsonElement> WaitForJobAsync(this HttpClient client, Guid jobId, Func<JsonElement, bool> done, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        JsonElement job;
        do
        {
            job = await client.GetJobAsync(jobId);
            if (done(job))
            {
                return job;
            }

            await Task.Delay(50);
        }
        while (DateTime.UtcNow < deadline);

        throw new TimeoutException($"Job {jobId} did not reach the expected state; last seen: {job}");
    }

    public static Task<JsonElement> WaitForStateAsync(this HttpClient client, Guid jobId, string state) =>
        client.WaitForJobAsync(jobId, j => j.GetProperty("state").GetString() == state);

    public static Guid Id(this JsonElement job) => job.GetProperty("id").GetGuid();
}
