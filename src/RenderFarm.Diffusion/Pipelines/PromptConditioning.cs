namespace RenderFarm.Diffusion.Pipelines;

/// <summary>
/// What the UNet is conditioned on, one row per UNet batch row (the unconditional rows first under guidance):
/// the text encoders' hidden states [rows, tokens, <see cref="HiddenWidth"/>] and, for SDXL, the pooled
/// <see cref="TextEmbeds"/> [rows, <see cref="TextEmbedsWidth"/>] and the size conditioning <see cref="TimeIds"/> [rows, 6].
/// </summary>
internal sealed record PromptConditioning(float[] Hidden, int HiddenWidth, float[]? TextEmbeds = null, int TextEmbedsWidth = 0, float[]? TimeIds = null)
{
    /// <summary>Values per row of <see cref="TimeIds"/>: original height and width, crop top and left, target height and width.</summary>
    public const int TimeIdCount = 6;

    /// <summary>Rows <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/> of every tensor.</summary>
    public PromptConditioning Slice(int first, int count, int totalRows)
    {
        if (first == 0 && count == totalRows)
        {
            return this;
        }

        static float[]? Take(float[]? values, int first, int count, int totalRows)
        {
            if (values is null)
            {
                return null;
            }

            var perRow = values.Length / totalRows;
            return values.AsSpan(first * perRow, count * perRow).ToArray();
        }

        return this with
        {
            Hidden = Take(Hidden, first, count, totalRows)!,
            TextEmbeds = Take(TextEmbeds, first, count, totalRows),
            TimeIds = Take(TimeIds, first, count, totalRows),
        };
    }

    /// <summary>
    /// SDXL's <c>add_time_ids</c> for one row, as diffusers' <c>_get_add_time_ids</c> lays them out:
    /// original_size + crops_coords_top_left + target_size, each (height, width) / (top, left).
    /// </summary>
    public static float[] SizeConditioning(int originalHeight, int originalWidth, int cropTop, int cropLeft, int targetHeight, int targetWidth) =>
        [originalHeight, originalWidth, cropTop, cropLeft, targetHeight, targetWidth];
}
