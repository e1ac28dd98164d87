namespace RenderFarm.Diffusion.Tokenizers;

/// <summary>
/// One prompt encoded for a CLIP text encoder: exactly <see cref="ClipTokenizer.MaxLength"/> ids, ready to feed as
/// <c>input_ids</c>.
/// </summary>
/// <param name="Ids">
/// <c>MaxLength</c> ids: the start token, the prompt's tokens, the end token, then the pad token up to the end.
/// </param>
/// <param name="Count">How many ids are real tokens, start and end tokens included (never more than <c>MaxLength</c>).</param>
/// <param name="Truncated">Whether the prompt had more tokens than fit, so that some were dropped.</param>
/// <param name="DroppedText">
/// The decoded text of the tokens that truncation dropped (empty when none were), so a render can warn and say what
/// the model never saw.
/// </param>
public sealed record ClipTokenization(int[] Ids, int Count, bool Truncated, string DroppedText);
