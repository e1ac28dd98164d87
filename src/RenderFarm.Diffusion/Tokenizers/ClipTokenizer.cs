using System.Runtime.InteropServices;

namespace RenderFarm.Diffusion.Tokenizers;

/// <summary>
/// The CLIP tokenizer that Stable Diffusion text encoders expect: byte-level BPE with <c>&lt;/w&gt;</c> word ends,
/// loaded from a model's <c>tokenizer/</c> folder. By default it cleans text as OpenAI's <c>simple_tokenizer</c> does
/// (what SD 1.x was trained with); transformers' no-ftfy behaviour is <see cref="ClipTextCleanup.NoFtfy"/>.
/// </summary>
/// <remarks>
/// Hand-written rather than built on Microsoft.ML.Tokenizers: its BPE model has neither CLIP's text clean-up
/// (BasicTokenizer's control-character removal, CJK ideograph splitting and Python lower-casing) nor CLIP's
/// pre-tokenization regex, and the engine project does not reference it. The algorithm is small, and owning it lets the
/// tests pin it to the reference ids. Instances are immutable apart from a word cache and are safe to share between
/// threads.
/// </remarks>
public sealed class ClipTokenizer
{
    /// <summary>The sequence length of every CLIP text encoder used by Stable Diffusion (its position embeddings).</summary>
    public const int DefaultMaxLength = 77;

    private readonly ClipBpe _bpe;

    private ClipTokenizer(ClipBpe bpe, int bosId, int eosId, int padId, int vocabularySize, ClipTextCleanup cleanup)
    {
        _bpe = bpe;
        Cleanup = cleanup;
        BosId = bosId;
        EosId = eosId;
        PadId = padId;
        VocabularySize = vocabularySize;
    }

    /// <summary>Id of <c>&lt;|startoftext|&gt;</c>, read from the vocabulary.</summary>
    public int BosId { get; }

    /// <summary>Id of <c>&lt;|endoftext|&gt;</c>, read from the vocabulary; also the id of unknown symbols.</summary>
    public int EosId { get; }

    /// <summary>
    /// The pad id: the <c>pad_token</c> of <c>special_tokens_map.json</c> or <c>tokenizer_config.json</c> when the
    /// folder has one (SD 2.x pads with <c>!</c>), else <see cref="EosId"/> (SD 1.x).
    /// </summary>
    public int PadId { get; }

    /// <summary>Length of every encoded sequence, start and end tokens included.</summary>
    public int MaxLength => DefaultMaxLength;

    /// <summary>How prompts are cleaned before they are cut into words.</summary>
    public ClipTextCleanup Cleanup { get; }

    /// <summary>Number of entries in <c>vocab.json</c>.</summary>
    public int VocabularySize { get; }

    /// <summary>
    /// Loads <c>vocab.json</c> and <c>merges.txt</c> from <paramref name="tokenizerDirectory"/>, and the pad token from
    /// <c>special_tokens_map.json</c> or <c>tokenizer_config.json</c> when present.
    /// </summary>
    /// <exception cref="FileNotFoundException">A required file is missing; the message names it and the fix.</exception>
    /// <exception cref="InvalidDataException">A file is unreadable or inconsistent; the message names it and the fix.</exception>
    public static ClipTokenizer FromFolder(string tokenizerDirectory, ClipTextCleanup cleanup = ClipTextCleanup.Original)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tokenizerDirectory);
        if (!Enum.IsDefined(cleanup))
        {
            throw new ArgumentOutOfRangeException(nameof(cleanup), cleanup, "Unknown text cleanup.");
        }

        var files = ClipTokenizerFiles.Load(tokenizerDirectory);
        var bpe = new ClipBpe(files.Vocabulary, files.MergeRanks, files.EndOfTextId);
        return new ClipTokenizer(bpe, files.StartOfTextId, files.EndOfTextId, files.PadId, files.Vocabulary.Count, cleanup);
    }

    /// <summary>
    /// Encodes a prompt as start token, prompt tokens, end token, padded with <see cref="PadId"/> to
    /// <see cref="MaxLength"/>. A prompt with more than <c>MaxLength - 2</c> tokens is cut so that the end token stays
    /// last; the result says what was cut.
    /// </summary>
    public ClipTokenization Encode(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);

        var words = new List<string>();
        ClipPreTokenizer.Split(prompt, words, Cleanup);
        var tokens = new List<int>(words.Count + 4);
        foreach (var word in words)
        {
            _bpe.Encode(word, tokens);
        }

        var room = MaxLength - 2;
        var kept = Math.Min(tokens.Count, room);
        var ids = new int[MaxLength];
        ids[0] = BosId;
        tokens.CopyTo(0, ids, 1, kept);
        ids[kept + 1] = EosId;
        Array.Fill(ids, PadId, kept + 2, MaxLength - kept - 2);

        var truncated = tokens.Count > room;
        var dropped = truncated ? _bpe.Decode(CollectionsMarshal.AsSpan(tokens)[room..]) : string.Empty;
        return new ClipTokenization(ids, kept + 2, truncated, dropped);
    }
}
