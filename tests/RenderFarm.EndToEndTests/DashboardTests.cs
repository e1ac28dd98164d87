using Microsoft.Playwright;
using RenderFarm.Client;
using Xunit.Abstractions;

namespace RenderFarm.EndToEndTests;

/// <summary>
/// The operators' dashboard in headless Chromium against a real embedded farm: what an operator sees and does, read
/// back through the farm's API. Screenshots of the main pages are written under <see cref="DashboardFarm.Screenshots"/>.
/// </summary>
public sealed class DashboardTests(DashboardFarm farm, ITestOutputHelper output) : IClassFixture<DashboardFarm>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(3);

    private static SubmitJobRequest Job(int count, int steps) =>
        new(Prompt: "a lighthouse at dusk", Width: 64, Height: 64, Steps: steps, GuidanceScale: 7.5, Sampler: "euler", Count: count, Seed: 42);

    [Fact]
    public async Task The_fleet_lists_the_live_workers_and_the_jobs_page_lists_a_submitted_job()
    {
        var client = farm.CreateClient();
        var workers = await WaitAsync(async () => (await client.GetWorkersAsync()).Where(w => w.Live).ToList(), w => w.Count == 2);
        var page = await farm.OpenAsync("#/fleet");

        foreach (var worker in workers)
        {
            await Expect(page.Locator($"[data-testid=worker][data-worker-id='{worker.Id}'][data-status=live]")).ToBeVisibleAsync();
        }

        await Expect(page.Locator("[data-testid=worker]")).ToHaveCountAsync(2);
        var fleet = await page.Locator("[data-testid=worker]").First.InnerTextAsync();
        fleet.ShouldContain("budget");
        fleet.ShouldContain("loaded models");
        Saved(await farm.ScreenshotAsync(page, "fleet"));

        var (job, _) = await client.SubmitJobAsync(Job(count: 2, steps: 4));
        await page.GotoAsync(new Uri(farm.Address, "/dashboard/#/jobs").ToString());
        await Expect(page.Locator($"[data-testid=job-row][data-job-id='{job.Id}']")).ToBeVisibleAsync();
        Saved(await farm.ScreenshotAsync(page, "jobs"));
    }

    [Fact]
    public async Task A_jobs_progress_advances_on_its_page_without_a_reload()
    {
        var client = farm.CreateClient();
        // The browser is opened before the job exists and then only changes the hash, so the job starts the moment
        // the page can watch it; a fresh page load on a busy CI machine took longer than a small job ran.
        var page = await farm.OpenAsync("#/jobs");
        // A marker in the page's own JavaScript state: a reload would wipe it.
        await page.EvaluateAsync("() => { window.__sameDocument = true; }");
        var (job, _) = await client.SubmitJobAsync(new SubmitJobRequest(
            Prompt: "a lighthouse at dusk", Width: 128, Height: 128, Steps: 60, GuidanceScale: 7.5, Sampler: "euler", Count: 16, Seed: 43));
        await page.EvaluateAsync("id => { location.hash = '#/jobs/' + id; }", job.Id.ToString());
        var progress = page.Locator("[data-testid=job-progress]");
        await Expect(progress).ToBeVisibleAsync();

        var first = int.Parse(await progress.GetAttributeAsync("data-done") ?? "0");
        first.ShouldBeLessThan(16, "the job finished before the page could watch it; make it longer");
        await page.WaitForFunctionAsync(
            "first => Number(document.querySelector('[data-testid=job-progress]').dataset.done) > first", first,
            new PageWaitForFunctionOptions { Timeout = (float)Deadline.TotalMilliseconds });
        await Expect(page.Locator("[data-testid=running-item]").First).ToBeVisibleAsync();
        Saved(await farm.ScreenshotAsync(page, "job"));

        await Expect(page.Locator("[data-testid=job-state]")).ToHaveAttributeAsync("data-state", "Succeeded", new() { Timeout = (float)Deadline.TotalMilliseconds });
        (await progress.GetAttributeAsync("data-done")).ShouldBe("16");
        (await page.EvaluateAsync<bool>("() => window.__sameDocument === true")).ShouldBeTrue("the page reloaded");
        (await client.GetJobAsync(job.Id))!.State.ShouldBe(JobState.Succeeded);
        await Expect(page.Locator("[data-testid=item-row][data-state=Succeeded]")).ToHaveCountAsync(16);

        await page.GotoAsync(new Uri(farm.Address, "/dashboard/#/queues").ToString());
        await Expect(page.Locator("[data-testid=throughput-chart]")).ToBeVisibleAsync();
        await Expect(page.Locator("[data-testid=dead-letters]")).ToBeVisibleAsync();
        Saved(await farm.ScreenshotAsync(page, "queues"));
    }

    [Fact]
    public async Task A_hires_jobs_tile_map_fills_in_as_tiles_finish()
    {
        var client = farm.CreateClient();
        // As in the progress test: the page is loaded before the job exists, because on a busy CI machine a fresh page
        // load took longer than all 25 tiles.
        var page = await farm.OpenAsync("#/jobs");
        var (job, _) = await client.SubmitJobAsync(new SubmitJobRequest(
            Prompt: "a lighthouse at dusk", Width: 256, Height: 256, Steps: 80, GuidanceScale: 7.5, Sampler: "euler", Seed: 5,
            Mode: "hires", Strength: 0.5, Tile: 64, Overlap: 16, BaseWidth: 64, BaseHeight: 64));
        await page.EvaluateAsync("id => { location.hash = '#/jobs/' + id; }", job.Id.ToString());
        var tiles = page.Locator("[data-testid=tile]");
        await Expect(tiles.First).ToBeVisibleAsync();
        var total = await tiles.CountAsync();
        total.ShouldBeGreaterThan(4);
        var doneAtFirst = await page.Locator("[data-testid=tile][data-state=Succeeded]").CountAsync();
        doneAtFirst.ShouldBeLessThan(total, "every tile was done before the page could watch; make the job longer");

        await page.WaitForFunctionAsync(
            "n => document.querySelectorAll('[data-testid=tile][data-state=Succeeded]').length > n", doneAtFirst,
            new PageWaitForFunctionOptions { Timeout = (float)Deadline.TotalMilliseconds });
        Saved(await farm.ScreenshotAsync(page, "hires-tiles"));
        await Expect(page.Locator("[data-testid=tile][data-state=Succeeded]")).ToHaveCountAsync(total, new() { Timeout = (float)Deadline.TotalMilliseconds });
        await Expect(page.Locator("[data-testid=job-state]")).ToHaveAttributeAsync("data-state", "Succeeded", new() { Timeout = (float)Deadline.TotalMilliseconds });
    }

    [Fact]
    public async Task Cancel_on_the_job_page_cancels_the_job()
    {
        var client = farm.CreateClient();
        var (job, _) = await client.SubmitJobAsync(Job(count: 200, steps: 40));
        var page = await farm.OpenAsync($"#/jobs/{job.Id}");
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
        await Expect(page.Locator("[data-testid=cancel]")).ToBeEnabledAsync();

        await page.Locator("[data-testid=cancel]").ClickAsync();

        var canceled = await WaitAsync(() => client.GetJobAsync(job.Id), j => j!.State == JobState.Canceled);
        canceled!.Progress.Canceled.ShouldBeGreaterThan(0);
        await Expect(page.Locator("[data-testid=job-state]")).ToHaveAttributeAsync("data-state", "Canceled");
        await Expect(page.Locator("[data-testid=cancel]")).ToBeDisabledAsync();
        await Expect(page.Locator("[data-testid=retry]")).ToBeEnabledAsync();
    }

    [Fact]
    public async Task Retry_on_the_page_of_a_canceled_job_renders_its_canceled_items_on_the_workers_that_heard_the_cancel()
    {
        var client = farm.CreateClient();
        var (job, _) = await client.SubmitJobAsync(Job(count: 6, steps: 30));
        await client.CancelJobAsync(job.Id, "try again later");
        var canceled = (await client.GetJobAsync(job.Id))!;
        canceled.Progress.Canceled.ShouldBeGreaterThan(0);
        var page = await farm.OpenAsync($"#/jobs/{job.Id}");
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
        await Expect(page.Locator("[data-testid=retry]")).ToBeEnabledAsync();

        await page.Locator("[data-testid=retry]").ClickAsync();

        await Expect(page.Locator("[data-testid=action-result]")).ToContainTextAsync($"{canceled.Progress.Canceled} item(s) queued again");
        var done = await WaitAsync(() => client.GetJobAsync(job.Id), j => j!.IsFinal);
        done!.State.ShouldBe(JobState.Succeeded);
        done.Progress.Succeeded.ShouldBe(6);
        await Expect(page.Locator("[data-testid=job-state]")).ToHaveAttributeAsync("data-state", "Succeeded");
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);

    private void Saved(string path) => output.WriteLine($"screenshot: {path}");

    private static async Task<T> WaitAsync<T>(Func<Task<T>> read, Func<T, bool> done)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The farm did not reach the expected state; last seen: {value}");
            }

            await Task.Delay(200);
        }
    }
}
