using RenderFarm.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace RenderFarm.IntegrationTests;

/// <summary>
/// Traces over OTLP from a distributed farm (a coordinator and a worker process on the real PostgreSQL, RabbitMQ and
/// S3): one item's trace must run from the coordinator's POST through the outbox, the bus and the worker's render
/// stages back to the coordinator's completion.
/// </summary>
public sealed class TraceExportTests(FarmEnvironment environment, ITestOutputHelper output) : IClassFixture<FarmEnvironment>
{
    private static readonly string[] EngineStages = ["text encode", "denoise", "vae decode", "png encode"];

    [Fact]
    public async Task One_trace_spans_the_coordinators_POST_the_workers_render_stages_and_the_coordinators_completion()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        await using var receiver = new OtlpTraceReceiver();
        var otlp = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint.ToString().TrimEnd('/'),
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            // Export spans within a fraction of a second rather than the default 5 s.
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        };
        await using var farm = new Farm(environment, output, otlp);
        await farm.StartCoordinatorAsync(ct);
        await farm.StartWorkerAsync("it-trace", ct, otlp);

        var jobId = await farm.SubmitAsync(Farm.Job(count: 1, steps: 2), ct);
        var job = await farm.WaitForJobAsync(jobId, Farm.IsFinal, TimeSpan.FromSeconds(90), ct);
        Farm.State(job).ShouldBe("Succeeded", job.ToString());

        var jobKey = jobId.ToString();
        List<ReceivedSpan> trace = [];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var spans = receiver.Spans;
            var post = spans.FirstOrDefault(s => s.Service == "renderfarm-coordinator" && s.Name == "job submit" && s.Attributes.GetValueOrDefault("renderfarm.job.id") == jobKey);
            trace = post is null ? [] : [.. spans.Where(s => s.TraceId == post.TraceId)];
            if (Complete(trace) || DateTime.UtcNow > deadline)
                break;
            await Task.Delay(250, ct);
        }

        var summary = string.Join("\n", trace.Select(s => $"{s.Service}: {s.Name} ({s.SpanId} <- {s.ParentSpanId})"));
        output.WriteLine(summary);
        trace.ShouldNotBeEmpty($"no 'job submit' span of job {jobId} arrived; received: {string.Join(", ", receiver.Spans.Select(s => s.Service + ":" + s.Name).Distinct())}");
        trace.ShouldContain(s => s.Service == "renderfarm-coordinator" && s.Name.StartsWith("POST", StringComparison.Ordinal), summary);
        trace.ShouldContain(s => s.Service == "renderfarm-coordinator" && s.Name == "outbox dispatch", summary);
        var render = trace.FirstOrDefault(s => s.Service == "renderfarm-worker" && s.Name == "render");
        render.ShouldNotBeNull(summary);
        render.Attributes.GetValueOrDefault("renderfarm.job.id").ShouldBe(jobKey);
        render.Attributes.GetValueOrDefault("renderfarm.item.index").ShouldBe("0");
        render.Attributes.GetValueOrDefault("renderfarm.model").ShouldBe(FarmEnvironment.ModelName);
        render.Attributes.GetValueOrDefault("renderfarm.size").ShouldBe("64x64");
        render.Attributes.GetValueOrDefault("renderfarm.sampler").ShouldBe("euler");
        render.Attributes.GetValueOrDefault("renderfarm.strategy").ShouldNotBeNullOrEmpty();
        foreach (var stage in EngineStages)
            trace.Count(s => s.Service == "renderfarm-worker" && s.Name == stage).ShouldBe(1, $"one '{stage}' span per render, not per step:\n{summary}");
        trace.ShouldContain(s => s.Service == "renderfarm-worker" && s.Name == "storage put", summary);
        trace.ShouldContain(s => s.Service == "renderfarm-coordinator" && s.Name == "item complete" && s.Attributes.GetValueOrDefault("renderfarm.job.id") == jobKey, summary);

        // One tree: every span but the root has its parent in the trace.
        Roots(trace).ShouldBe(1, summary);
        farm.Passed();
    }

    // Each process exports on its own schedule, and a parent span ends (and is exported) after its children: the
    // coordinator's completion can arrive before the worker's render and consume spans. Wait for every expected span
    // and for the tree to close (one root), or the deadline.
    private static bool Complete(List<ReceivedSpan> trace) =>
        new[] { "item complete", "storage put", "render", "outbox dispatch" }.Concat(EngineStages).All(name => trace.Any(s => s.Name == name))
        && Roots(trace) == 1;

    private static int Roots(List<ReceivedSpan> trace)
    {
        var ids = trace.Select(s => s.SpanId).ToHashSet(StringComparer.Ordinal);
        return trace.Count(s => s.ParentSpanId.Length == 0 || !ids.Contains(s.ParentSpanId));
    }
}
