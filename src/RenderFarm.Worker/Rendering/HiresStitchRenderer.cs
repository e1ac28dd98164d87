using System.Globalization;
using System.IO.Pipelines;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using RenderFarm.Contracts;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Storage;

namespace RenderFarm.Worker.Rendering;

/// <summary>
/// Runs a <see cref="RenderModes.HiresStitch"/> item: the stored tiles blended by <see cref="TileStitcher"/> into a PNG
/// that streams through a pipe straight into <see cref="IArtifactStore.PutAsync"/> under the item's output key. No
/// engine, and never the whole image in memory: the live heap is the tiles overlapping the current band of rows (about
/// two rows of tiles) plus the pipe's bounded buffer, whatever the image size.
/// </summary>
/// <remarks>
/// The blend and the parameters are those of the single-machine render (<see cref="HiresPipeline"/>), so the farm's
/// final PNG is byte-identical to <c>renderfarm render</c>'s for the same request. The stitch item carries the job's
/// own seed, prompt, negative prompt, steps, sampler, guidance, strength and model, which the parameters record.
/// </remarks>
public sealed class HiresStitchRenderer(IArtifactStore store)
{
    private const string PngContentType = "image/png";

    /// <summary>Bytes the stitch may run ahead of the upload before it waits: bounds the pipe's memory.</summary>
    private const long PipePauseBytes = 1024 * 1024;

    /// <summary>
    /// Stitches <paramref name="item"/>'s tiles into its output key. Progress counts rows: step = rows written, total =
    /// the image height, reported after each band of <see cref="TileStitcher.BandHeight"/> rows.
    /// </summary>
    /// <exception cref="ArgumentException">The item's hires part is not a valid stitch (retrying would not help).</exception>
    /// <exception cref="HiresInputMissingException">The base or a tile is not in the store; nothing was stored.</exception>
    /// <returns>The SHA-256 of the stored PNG (lowercase hex), hashed as it streams out.</returns>
    public async Task<string> StitchAsync(RenderItem item, IProgress<RenderStep>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var (part, grid) = HiresArtifacts.Grid(item, HiresRoles.Stitch);
        if (part.TileKeys is not { } keys || keys.Count != grid.Tiles.Count)
        {
            throw new ArgumentException($"A hires-stitch item needs one tile key per tile ({grid.Tiles.Count}), got {part.TileKeys?.Count ?? 0}.", nameof(item));
        }

        if (part.BaseImageKey is not { } baseKey)
        {
            throw new ArgumentException("A hires-stitch item needs its base image key (its size goes into the image's parameters).", nameof(item));
        }

        var layout = HiresLayouts.FromGrid(grid, item.Seed, item.Prompt);
        var parameters = await ParametersAsync(item, layout, baseKey, cancellationToken);
        await using var tiles = new HiresStoreTileSource(store, layout, keys);
        var rows = progress is null ? null : new RowProgress(progress);
        string? hash = null;
        await StreamToStoreAsync(
            item.OutputKey,
            async (output, token) =>
            {
                // A hash transform passes its bytes through unchanged, so the PNG is hashed on its way to the store
                // instead of being read back.
                using var sha256 = SHA256.Create();
                await using var hashing = new CryptoStream(output, sha256, CryptoStreamMode.Write, leaveOpen: true);
                await TileStitcher.StitchAsync(layout, tiles, hashing, parameters, rows, token);
                await hashing.FlushFinalBlockAsync(token);
                hash = Convert.ToHexStringLower(sha256.Hash!);
            },
            cancellationToken);
        return hash ?? throw new InvalidOperationException("The stitch finished without hashing its PNG.");
    }

    /// <summary>
    /// The text the single-machine render writes (<see cref="HiresPipeline.Parameters(HiresRequest, string, int, int)"/>);
    /// the base is read only for its size, which the text records.
    /// </summary>
    private async Task<string> ParametersAsync(RenderItem item, HiresLayout layout, string baseKey, CancellationToken cancellationToken)
    {
        var encoded = await HiresArtifacts.ReadAsync(store, baseKey, "base image", cancellationToken);
        var baseImage = HiresArtifacts.Decode(encoded, baseKey, "base image");
        if (RenderModes.IsUpscaleOnly(item))
        {
            // An upscale job's image: no prompt, seed or denoising made it, so its text records only the enlargement.
            return string.Create(CultureInfo.InvariantCulture,
                $"Size: {layout.Width}x{layout.Height}, Upscaled from: {baseImage.Width}x{baseImage.Height}, Upscaler: {item.Hires?.Upscaler ?? "Mitchell resampling"}");
        }

        var request = new HiresRequest
        {
            Layout = layout,
            Prompt = item.Prompt,
            Seed = unchecked((ulong)item.Seed),
            Settings = new RefineSettings
            {
                Steps = item.Steps,
                GuidanceScale = item.GuidanceScale,
                Sampler = item.Sampler,
                Strength = item.Strength ?? throw new ArgumentException("A hires-stitch item needs the job's strength (the image's parameters record it).", nameof(item)),
                NegativePrompt = item.NegativePrompt,
            },
            Upscaler = item.Hires?.Upscaler,
        };
        return HiresPipeline.Parameters(request, item.Model, baseImage.Width, baseImage.Height);
    }

    /// <summary>
    /// Runs <paramref name="write"/> into a pipe whose other end is uploaded to <paramref name="key"/> as it fills, so
    /// neither side holds the whole object. A failure on either side stops the other, and the store is left without the
    /// object (a put that ends in an error stores nothing); the writer's own error wins, since the upload then only saw
    /// a broken stream.
    /// </summary>
    internal async Task StreamToStoreAsync(string key, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: PipePauseBytes, resumeWriterThreshold: PipePauseBytes / 2, useSynchronizationContext: false));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var produce = Task.Run(async () =>
        {
            try
            {
                await using (var output = pipe.Writer.AsStream(leaveOpen: true))
                {
                    await write(output, stop.Token);
                }

                await pipe.Writer.CompleteAsync();
            }
            catch (Exception ex)
            {
                await pipe.Writer.CompleteAsync(ex);
                throw;
            }
        }, CancellationToken.None);
        var upload = Task.Run(async () =>
        {
            try
            {
                await using (var input = pipe.Reader.AsStream(leaveOpen: true))
                {
                    await store.PutAsync(key, input, PngContentType, stop.Token);
                }

                await pipe.Reader.CompleteAsync();
            }
            catch (Exception ex)
            {
                // The writer would otherwise block on a full pipe that no one reads any more.
                await pipe.Reader.CompleteAsync(ex);
                await stop.CancelAsync();
                throw;
            }
        }, CancellationToken.None);

        try
        {
            await Task.WhenAll(produce, upload);
        }
        catch when (!cancellationToken.IsCancellationRequested)
        {
            if (produce.Exception?.InnerException is { } writeError and not OperationCanceledException)
            {
                ExceptionDispatchInfo.Throw(writeError);
            }

            if (upload.Exception?.InnerException is { } uploadError)
            {
                ExceptionDispatchInfo.Throw(uploadError);
            }

            throw;
        }
    }

    /// <summary>Stitch rows as render steps: the consumer reports them like denoising steps.</summary>
    private sealed class RowProgress(IProgress<RenderStep> inner) : IProgress<StitchProgress>
    {
        public void Report(StitchProgress value) => inner.Report(new RenderStep(value.RowsWritten, value.Height));
    }
}
