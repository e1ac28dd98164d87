namespace RenderFarm.Diffusion.Tokenizers;

/// <summary>How a prompt is cleaned before CLIP's regex cuts it into words; the two differ most on CJK text.</summary>
public enum ClipTextCleanup
{
    /// <summary>
    /// OpenAI's own <c>simple_tokenizer</c>, which CLIP and Stable Diffusion 1.x were trained with and which
    /// AUTOMATIC1111 and transformers-with-ftfy run: ftfy's fixes, HTML unescaping, whitespace collapsed, lower case.
    /// A run of letters of any script, ideographs and kana included, is one word (<see cref="ClipPreTokenizer"/>
    /// lists which of ftfy's fixes are reproduced).
    /// </summary>
    Original,

    /// <summary>
    /// transformers' <c>CLIPTokenizer</c> when ftfy is not installed (diffusers' usual environment): its
    /// <c>BasicTokenizer</c> drops control characters and puts spaces around every CJK ideograph, so each ideograph is
    /// a word of its own; no HTML unescaping and no width or quote fixes.
    /// </summary>
    NoFtfy,
}
