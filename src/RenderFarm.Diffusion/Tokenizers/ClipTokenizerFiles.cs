using System.Text.Json;

namespace RenderFarm.Diffusion.Tokenizers;

/// <summary>
/// Reads and validates the files of a diffusers/Optimum <c>tokenizer/</c> folder. Every failure names the file and
/// what to do, because the usual cause is a model folder copied without its tokenizer.
/// </summary>
internal sealed class ClipTokenizerFiles
{
    public const string VocabularyFile = "vocab.json";
    public const string MergesFile = "merges.txt";
    public const string TokenizerConfigFile = "tokenizer_config.json";
    public const string SpecialTokensMapFile = "special_tokens_map.json";

    private const string Fix =
        "A Stable Diffusion model folder (diffusers/Optimum layout) carries vocab.json and merges.txt in its tokenizer/ " +
        "subfolder; copy that folder from the model's source (e.g. the Hugging Face repository) or point the model at " +
        "the folder that holds them.";

    private ClipTokenizerFiles(
        Dictionary<string, int> vocabulary,
        Dictionary<(string Left, string Right), int> mergeRanks,
        int startOfTextId,
        int endOfTextId,
        int padId)
    {
        Vocabulary = vocabulary;
        MergeRanks = mergeRanks;
        StartOfTextId = startOfTextId;
        EndOfTextId = endOfTextId;
        PadId = padId;
    }

    public Dictionary<string, int> Vocabulary { get; }

    public Dictionary<(string Left, string Right), int> MergeRanks { get; }

    public int StartOfTextId { get; }

    public int EndOfTextId { get; }

    public int PadId { get; }

    public static ClipTokenizerFiles Load(string directory)
    {
        var vocabularyPath = RequireFile(directory, VocabularyFile);
        var mergesPath = RequireFile(directory, MergesFile);

        var vocabulary = ReadVocabulary(vocabularyPath);
        var ranks = ReadMerges(mergesPath);
        var startOfText = RequireToken(vocabulary, ClipPreTokenizer.StartOfText, vocabularyPath);
        var endOfText = RequireToken(vocabulary, ClipPreTokenizer.EndOfText, vocabularyPath);
        var pad = ReadPadId(directory, vocabulary) ?? endOfText;
        return new ClipTokenizerFiles(vocabulary, ranks, startOfText, endOfText, pad);
    }

    private static string RequireFile(string directory, string name)
    {
        var path = Path.Combine(directory, name);
        if (File.Exists(path))
        {
            return path;
        }

        var where = Directory.Exists(directory)
            ? $"'{name}' is missing from the tokenizer folder '{directory}'."
            : $"The tokenizer folder '{directory}' does not exist, so '{name}' cannot be read.";
        throw new FileNotFoundException($"CLIP tokenizer: {where} {Fix}", path);
    }

    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var document = JsonDocument.Parse(stream);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Corrupt(path, "it is not a JSON object mapping tokens to ids");
            }

            var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var entry in document.RootElement.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id < 0)
                {
                    throw Corrupt(path, $"the token '{entry.Name}' has no non-negative integer id");
                }

                vocabulary[entry.Name] = id;
            }

            if (vocabulary.Count == 0)
            {
                throw Corrupt(path, "it holds no tokens");
            }

            return vocabulary;
        }
        catch (JsonException exception)
        {
            throw Corrupt(path, $"it is not valid JSON ({exception.Message})", exception);
        }
    }

    private static Dictionary<(string Left, string Right), int> ReadMerges(string path)
    {
        var lines = File.ReadAllLines(path);
        // transformers always skips the first line; requiring it to be the header catches a truncated or wrong file.
        if (lines.Length == 0 || !lines[0].StartsWith("#version", StringComparison.Ordinal))
        {
            throw Corrupt(path, "its first line is not the '#version' header of a BPE merges file");
        }

        var ranks = new Dictionary<(string Left, string Right), int>(lines.Length);
        for (var i = 1; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0)
            {
                continue;
            }

            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2)
            {
                throw Corrupt(path, $"line {i + 1} ('{line}') is not two symbols separated by a space");
            }

            // The rank is the line's position; a repeated pair takes its later rank, as transformers'
            // dict(zip(merges, range(len(merges)))) does.
            ranks[(parts[0], parts[1])] = i - 1;
        }

        return ranks;
    }

    private static int RequireToken(Dictionary<string, int> vocabulary, string token, string vocabularyPath) =>
        vocabulary.TryGetValue(token, out var id)
            ? id
            : throw Corrupt(vocabularyPath, $"it has no '{token}' entry, so it is not a CLIP vocabulary");

    /// <summary>
    /// transformers reads <c>tokenizer_config.json</c> and lets <c>special_tokens_map.json</c> override it; the pad
    /// token is either a string or an AddedToken object with a <c>content</c> field.
    /// </summary>
    private static int? ReadPadId(string directory, Dictionary<string, int> vocabulary)
    {
        foreach (var name in (ReadOnlySpan<string>)[SpecialTokensMapFile, TokenizerConfigFile])
        {
            var path = Path.Combine(directory, name);
            if (!File.Exists(path))
            {
                continue;
            }

            var token = ReadPadToken(path);
            if (token is null)
            {
                continue;
            }

            return vocabulary.TryGetValue(token, out var id)
                ? id
                : throw Corrupt(path, $"its pad_token '{token}' is not in {VocabularyFile}");
        }

        return null;
    }

    private static string? ReadPadToken(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var document = JsonDocument.Parse(stream);
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("pad_token", out var pad))
            {
                return null;
            }

            return pad.ValueKind switch
            {
                JsonValueKind.String => pad.GetString(),
                JsonValueKind.Object when pad.TryGetProperty("content", out var content)
                    && content.ValueKind == JsonValueKind.String => content.GetString(),
                JsonValueKind.Null => null,
                _ => throw Corrupt(path, "its pad_token is neither a string nor an object with a 'content' string"),
            };
        }
        catch (JsonException exception)
        {
            throw Corrupt(path, $"it is not valid JSON ({exception.Message})", exception);
        }
    }

    private static InvalidDataException Corrupt(string path, string problem, Exception? inner = null) =>
        new($"CLIP tokenizer: '{Path.GetFileName(path)}' at '{path}' is unusable: {problem}. {Fix}", inner);
}
