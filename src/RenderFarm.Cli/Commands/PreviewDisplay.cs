using System.Globalization;
using RenderFarm.Client;
using RenderFarm.Diffusion.Imaging;
using Spectre.Console;

namespace RenderFarm.Cli.Commands;

/// <summary>
/// What <c>status --watch</c> does with running items' previews: show the newest in the terminal (<c>--preview</c>),
/// save each item's latest to a folder (<c>--preview-dir</c>, where an image viewer that reloads files can follow
/// it), both, or nothing.
/// </summary>
/// <param name="InTerminal">Draw the newest preview under the progress line (an interactive terminal only).</param>
/// <param name="Directory">Folder for <c>NNNNNN.preview.jpg</c> files, one per item, replaced as newer previews arrive.</param>
internal sealed record PreviewDisplay(bool InTerminal, string? Directory)
{
    public static PreviewDisplay None { get; } = new(false, null);

    /// <summary>Columns the terminal preview may take (Spectre draws a pixel per column, two rows per line with half blocks).</summary>
    public const int MaxTerminalWidth = 64;

    public bool Wanted => InTerminal || Directory is not null;

    /// <summary>The file an item's preview is saved to.</summary>
    public static string FileName(long index, string contentType) =>
        string.Create(CultureInfo.InvariantCulture, $"{index:D6}.preview{(contentType == "image/png" ? ".png" : ".jpg")}");

    /// <summary>Writes <paramref name="preview"/> as item <paramref name="index"/>'s file, replacing the previous one whole.</summary>
    public async Task<string> SaveAsync(long index, ItemPreview preview, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(preview);
        var folder = Directory ?? throw new InvalidOperationException("No preview folder was given.");
        System.IO.Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, FileName(index, preview.ContentType));
        // Beside the target, then moved: a viewer reloading the file never reads half of one.
        var partial = path + ".part";
        await File.WriteAllBytesAsync(partial, preview.Image, cancellationToken);
        File.Move(partial, path, overwrite: true);
        return path;
    }

    /// <summary>The preview as a Spectre.Console canvas, scaled down past <see cref="MaxTerminalWidth"/>.</summary>
    public static Canvas ToCanvas(ItemPreview preview)
    {
        ArgumentNullException.ThrowIfNull(preview);
        var image = PngCodec.Decode(preview.Image);
        var canvas = new Canvas(image.Width, image.Height) { MaxWidth = MaxTerminalWidth };
        for (var y = 0; y < image.Height; y++)
        {
            for (var x = 0; x < image.Width; x++)
            {
                var i = (y * image.Width + x) * 3;
                canvas.SetPixel(x, y, new Color(image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]));
            }
        }

        return canvas;
    }
}
