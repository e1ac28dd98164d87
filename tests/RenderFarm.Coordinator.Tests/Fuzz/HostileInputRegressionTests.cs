using System.Net;
using System.Text;
using System.Text.Json;
using RenderFarm.Coordinator.Tests.Infrastructure;

namespace RenderFarm.Coordinator.Tests.Fuzz;

/// <summary>One case per fault the hostile-input fuzz found, each answered now as a 4xx naming what was wrong.</summary>
public sealed class HostileInputRegressionTests(FuzzSqliteFixture fixture) : IClassFixture<FuzzSqliteFixture>
{
    [Theory]
    [InlineData("/v1/jobs/{job}/items?after=1e400", "after")]
    [InlineData("/v1/jobs/{job}/items?limit=NaN", "limit")]
    [InlineData("/v1/jobs/{job}?imagesLimit=true", "imagesLimit")]
    [InlineData("/sdapi/v1/progress?skip_current_image=maybe", "skipCurrentImage")]
    public async Task A_query_value_of_the_wrong_type_is_a_400_naming_the_parameter(string path, string parameter)
    {
        using var client = fixture.Factory.CreateClient();
        var job = await client.SubmitAsync(JobsClient.ValidJob());

        using var response = await client.GetAsync(path.Replace("{job}", job.Id().ToString(), StringComparison.Ordinal));

        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);
        problem.GetProperty("detail").GetString()!.ShouldContain(parameter);
    }

    [Theory]
    [InlineData("%20")]
    [InlineData("%09%20")]
    public async Task A_blank_dead_letter_queue_name_is_a_400_problem(string queue)
    {
        using var client = fixture.Factory.CreateClient();

        using var response = await client.PostAsync($"/v1/dead-letters/{queue}/replay", content: null);

        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);
        problem.GetProperty("title").GetString().ShouldBe("No queue named");
    }

    [Fact]
    public async Task An_unknown_job_is_a_404_problem_json()
    {
        using var client = fixture.Factory.CreateClient();

        using var response = await client.GetAsync($"/v1/jobs/{Guid.NewGuid()}");

        var problem = await ProblemAsync(response, HttpStatusCode.NotFound);
        problem.GetProperty("title").GetString().ShouldBe("No such job.");
    }

    [Theory]
    [InlineData("cfg_scale", "1e400")]
    [InlineData("cfg_scale", "-1e400")]
    [InlineData("denoising_strength", "1e400")]
    public async Task A1111_non_finite_numbers_are_a_422_naming_the_field(string field, string value)
    {
        using var client = fixture.Factory.CreateClient();
        var body = $$"""{"prompt":"x","width":64,"height":64,"steps":2,"init_images":["{{TestPng.Base64}}"],"{{field}}":{{value}}}""";

        using var response = await client.PostAsync("/sdapi/v1/img2img", new StringContent(body, Encoding.UTF8, "application/json"));

        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity, text);
        JsonDocument.Parse(text).RootElement.GetProperty("detail")[0].GetProperty("loc")[1].GetString().ShouldBe(field);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413_naming_the_limit()
    {
        using var client = fixture.Factory.CreateClient();
        var prompt = new string('x', (int)FuzzFixture.MaxBodyBytes);

        using var response = await client.PostRawAsync(JobsClient.Patched($$"""{"prompt":"{{prompt}}"}"""));

        var problem = await ProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        problem.GetProperty("detail").GetString()!.ShouldContain($"at most {FuzzFixture.MaxBodyBytes}");
    }

    [Fact]
    public async Task A_body_just_under_the_limit_is_read_and_validated()
    {
        using var client = fixture.Factory.CreateClient();
        var prompt = new string('x', (int)FuzzFixture.MaxBodyBytes - 1000);

        using var response = await client.PostRawAsync(JobsClient.Patched($$"""{"prompt":"{{prompt}}"}"""));

        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);
        problem.GetProperty("errors").TryGetProperty("prompt", out _).ShouldBeTrue();
    }

    [Theory]
    [InlineData(100_000, 100_000)]
    [InlineData(-1, int.MinValue)]
    public async Task An_init_image_declaring_an_absurd_size_is_a_400_naming_it(int width, int height)
    {
        using var client = fixture.Factory.CreateClient();
        var png = Convert.ToBase64String(HostileImages.Declaring(width, height));

        using var response = await client.PostRawAsync(JobsClient.Patched($$"""{"mode":"img2img","initImage":"{{png}}","strength":0.5}"""));

        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);
        problem.GetProperty("errors").TryGetProperty("initImage", out _).ShouldBeTrue();
    }

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(status, text);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
