using System.Collections.Concurrent;
using System.Text;

namespace RenderFarm.Diffusion.Tokenizers;

/// <summary>
/// CLIP's byte-level BPE over one pre-tokenized word: the word's UTF-8 bytes become byte-alphabet symbols, the last
/// one carries <c>&lt;/w&gt;</c>, and the adjacent pair with the lowest merge rank is merged (every occurrence, left
/// to right) until no pair has a rank. Symbols missing from the vocabulary map to the unknown id, as in transformers.
/// </summary>
internal sealed class ClipBpe
{
    public const string EndOfWord = "</w>";

    // Words repeat across prompts (styles, artists, quality tags), but a worker lives for days: bound the memo.
    private const int CacheLimit = 20_000;

    private readonly Dictionary<string, int> _vocabulary;
    private readonly Dictionary<(string Left, string Right), int> _ranks;
    private readonly string?[] _tokensById;
    private readonly int _unknownId;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public ClipBpe(Dictionary<string, int> vocabulary, Dictionary<(string Left, string Right), int> ranks, int unknownId)
    {
        _vocabulary = vocabulary;
        _ranks = ranks;
        _unknownId = unknownId;
        _tokensById = new string?[vocabulary.Values.Max() + 1];
        foreach (var (token, id) in vocabulary)
        {
            _tokensById[id] = token;
        }
    }

    /// <summary>Appends the ids of one word from <see cref="ClipPreTokenizer"/>.</summary>
    public void Encode(string word, List<int> ids)
    {
        // Special tokens are whole words that BPE never splits (transformers seeds its cache with them).
        if (word is ClipPreTokenizer.StartOfText or ClipPreTokenizer.EndOfText)
        {
            ids.Add(_vocabulary.GetValueOrDefault(word, _unknownId));
            return;
        }

        if (!_cache.TryGetValue(word, out var cached))
        {
            cached = EncodeUncached(word);
            if (_cache.Count >= CacheLimit)
            {
                _cache.Clear();
            }

            _cache.TryAdd(word, cached);
        }

        ids.AddRange(cached);
    }

    /// <summary>
    /// transformers' <c>convert_tokens_to_string</c>: concatenate the tokens, map the byte alphabet back to bytes,
    /// decode UTF-8 (invalid sequences become U+FFFD), turn word ends into spaces and trim.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>(ids.Length * 4);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var id in ids)
        {
            var token = id >= 0 && id < _tokensById.Length ? _tokensById[id] : null;
            foreach (var symbol in token ?? string.Empty)
            {
                if (ByteLevelAlphabet.TryDecode(symbol, out var value))
                {
                    bytes.Add(value);
                }
                else
                {
                    // Not produced by this vocabulary's own tokens; keep the character rather than lose it.
                    var written = new Rune(char.IsSurrogate(symbol) ? '\uFFFD' : symbol).EncodeToUtf8(utf8);
                    bytes.AddRange(utf8[..written]);
                }
            }
        }

        var text = Encoding.UTF8.GetString([.. bytes]);
        return text.Replace(EndOfWord, " ", StringComparison.Ordinal).Trim();
    }

    private int[] EncodeUncached(string word)
    {
        var utf8 = Encoding.UTF8.GetBytes(word);
        var symbols = new List<string>(utf8.Length);
        for (var i = 0; i < utf8.Length; i++)
        {
            var symbol = ByteLevelAlphabet.Encode(utf8[i]).ToString();
            symbols.Add(i == utf8.Length - 1 ? symbol + EndOfWord : symbol);
        }

        var merged = new List<string>(symbols.Count);
        while (symbols.Count > 1)
        {
            var best = BestPair(symbols);
            if (best is not { } pair)
            {
                break;
            }

            merged.Clear();
            var i = 0;
            while (i < symbols.Count)
            {
                if (i < symbols.Count - 1
                    && string.Equals(symbols[i], pair.Left, StringComparison.Ordinal)
                    && string.Equals(symbols[i + 1], pair.Right, StringComparison.Ordinal))
                {
                    merged.Add(pair.Left + pair.Right);
                    i += 2;
                }
                else
                {
                    merged.Add(symbols[i]);
                    i++;
                }
            }

            (symbols, merged) = (merged, symbols);
        }

        var ids = new int[symbols.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = _vocabulary.GetValueOrDefault(symbols[i], _unknownId);
        }

        return ids;
    }

    private (string Left, string Right)? BestPair(List<string> symbols)
    {
        (string Left, string Right)? best = null;
        var bestRank = int.MaxValue;
        for (var i = 0; i < symbols.Count - 1; i++)
        {
            if (_ranks.TryGetValue((symbols[i], symbols[i + 1]), out var rank) && rank < bestRank)
            {
                bestRank = rank;
                best = (symbols[i], symbols[i + 1]);
            }
        }

        return best;
    }
}
