using System.CommandLine;
using System.Globalization;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm fetch ID -o DIR</c>: every finished image of a job as <c>{index:D6}.png</c>.</summary>
internal static class FetchCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The job id that `renderfarm submit` printed." };
        var output = new Option<string>("--output", "-o") { Description = "Folder for the images (created when missing).", DefaultValueFactory = _ => "." };
        var farm = FarmConnection.CreateOption();
        var command = new Command("fetch", "Download every finished image of a job as DIR/{index:D6}.png (images already there are fetched again).") { id, output, farm };
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

                var fetched = 0;
                await foreach (var image in client.GetImagesAsync(jobId, cancellationToken))
                {
                    var path = Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"{image.Index:D6}.png"));
                    await client.DownloadImageAsync(jobId, image.Index, path, cancellationToken);
                    fetched++;
                }

                var o = result.Out();
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
}
