using System.CommandLine;
using System.Globalization;
using RenderFarm.Client;

namespace RenderFarm.Cli.Commands;

/// <summary>
/// <c>renderfarm fetch ID -o DIR</c>: every finished image of a job as <c>{index:D6}.png</c>; for a hires job only the
/// stitched final image (its base and tiles are intermediate), unless <c>--all</c> asks for every part.
/// </summary>
internal static class FetchCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The job id that `renderfarm submit` printed." };
        var output = new Option<string>("--output", "-o") { Description = "Folder for the images (created when missing).", DefaultValueFactory = _ => "." };
        var all = new Option<bool>("--all") { Description = "For a hires job, also fetch its base image and tiles (by default only the final stitched image)." };
        var farm = FarmConnection.CreateOption();
        var command = new Command("fetch", "Download every finished image of a job as DIR/{index:D6}.png (images already there are fetched again); for a hires job, the final image.") { id, output, all, farm };
        command.SetAction((result, cancellationToken) =>
        {
            if (FarmConnection.ParseJobId(result, result.GetRequiredValue(id)) is not { } jobId)
            {
                return Task.FromResult(ExitCodes.InvalidInput);
            }

            var folder = Path.GetFullPath(result.GetRequiredValue(output));
            return FarmConnection.RunAsync(result, farm, async client =>
            {
                var job = await client.GetJobAsync(jobId, imagesLimit: 1, cancellationToken: cancellationToken);
                if (job is null)
                {
                    return result.Fail(ExitCodes.InvalidInput, $"the farm has no job {jobId}.");
                }

                try
                {
                    Directory.CreateDirectory(folder);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    return result.Fail(ExitCodes.InvalidInput, $"cannot create '{folder}': {ex.Message}");
                }

                var o = result.Out();
                if (RenderModes.IsTiled(job.Mode) && !result.GetValue(all))
                {
                    return await FetchFinalAsync(client, job, folder, o, cancellationToken);
                }

                var fetched = 0;
                await foreach (var image in client.GetImagesAsync(jobId, cancellationToken))
                {
                    var path = Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"{image.Index:D6}.png"));
                    await client.DownloadImageAsync(jobId, image.Index, path, cancellationToken);
                    fetched++;
                }

                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fetched {fetched} image(s) of job {jobId} to {folder}"));
                if (!job.IsFinal)
                {
                    o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"the job is {job.State} ({job.Progress.Done}/{job.Progress.Total} items done): fetch again later for the rest."));
                }

                return ExitCodes.Success;
            }, cancellationToken);
        });
        return command;
    }

    /// <summary>The stitched image of a hires job (its last item), or a word on why it is not there yet.</summary>
    private static async Task<int> FetchFinalAsync(RenderFarmClient client, Job job, string folder, TextWriter output, CancellationToken cancellationToken)
    {
        var c = CultureInfo.InvariantCulture;
        if (job.ResultImage is null)
        {
            output.WriteLine(string.Create(c, $"the hires job {job.Id} is {job.State} ({job.Progress.Done}/{job.Progress.Total} items done): its final image is not stitched yet{(job.IsFinal ? " and never will be" : "; fetch again later")}."));
            return job.IsFinal ? ExitCodes.Failure : ExitCodes.Success;
        }

        var stitch = job.Items - 1;
        var path = Path.Combine(folder, string.Create(c, $"{stitch:D6}.png"));
        await client.DownloadImageAsync(job.Id, stitch, path, cancellationToken);
        output.WriteLine(string.Create(c, $"fetched the final {job.Width}x{job.Height} image of hires job {job.Id} to {path}"));
        return ExitCodes.Success;
    }
}
