using System.Text;
using System.Text.Json;
using RenderFarm.Diffusion.Tokenizers;

namespace RenderFarm.Diffusion.Tests.Tokenizers;

/// <summary>Loading tokenizer folders: pad-token configuration, the tiny test-model vocabulary, and bad folders.</summary>
public sealed class ClipTokenizerFolderTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("renderfarm-clip-tokenizer-");

    public void Dispose() => _folder.Delete(recursive: true);

    private string FolderFile(string name) => Path.Combine(_folder.FullName, name);

    private void CopyRealVocabulary()
    {
        File.Copy(Path.Combine(ClipVocabularyFolder.Path, "vocab.json"), FolderFile("vocab.json"));
        File.Copy(Path.Combine(ClipVocabularyFolder.Path, "merges.txt"), FolderFile("merges.txt"));
    }

    [Fact]
    public void The_pad_token_of_tokenizer_config_is_used_as_sd2_folders_ask()
    {
        CopyRealVocabulary();
        File.WriteAllText(FolderFile("tokenizer_config.json"), """{ "model_max_length": 77, "pad_token": "!" }""");

        var tokenizer = ClipTokenizer.FromFolder(_folder.FullName);
        var encoded = tokenizer.Encode("a cat");

        // "!" is the first entry of the CLIP vocabulary.
        tokenizer.PadId.ShouldBe(0);
        encoded.Ids[..4].ShouldBe([49406, 320, 2368, 49407]);
        encoded.Ids[4..].ShouldAllBe(id => id == 0);
    }

    [Fact]
    public void Special_tokens_map_overrides_tokenizer_config_and_may_hold_an_added_token_object()
    {
        CopyRealVocabulary();
        File.WriteAllText(FolderFile("tokenizer_config.json"), """{ "pad_token": "<|endoftext|>" }""");
        File.WriteAllText(
            FolderFile("special_tokens_map.json"),
            """{ "pad_token": { "content": "!", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false } }""");

        ClipTokenizer.FromFolder(_folder.FullName).PadId.ShouldBe(0);
    }

    [Fact]
    public void Without_a_pad_token_the_end_token_pads_as_in_sd1()
    {
        CopyRealVocabulary();
        File.WriteAllText(FolderFile("tokenizer_config.json"), """{ "model_max_length": 77 }""");

        ClipTokenizer.FromFolder(_folder.FullName).PadId.ShouldBe(49407);
    }

    [Fact]
    public void A_byte_level_vocabulary_without_merges_tokenizes_every_word_into_its_bytes()
    {
        WriteByteLevelVocabulary();

        var tokenizer = ClipTokenizer.FromFolder(_folder.FullName);
        var encoded = tokenizer.Encode("Cat café");

        // Ids in this vocabulary: byte b -> b, byte b with "</w>" -> 256 + b, start 512, end 513.
        tokenizer.VocabularySize.ShouldBe(514);
        tokenizer.BosId.ShouldBe(512);
        tokenizer.EosId.ShouldBe(513);
        tokenizer.PadId.ShouldBe(513);
        encoded.Ids[..10].ShouldBe([512, 'c', 'a', 256 + 't', 'c', 'a', 'f', 0xC3, 256 + 0xA9, 513]);
        encoded.Count.ShouldBe(10);
        encoded.Ids[10..].ShouldAllBe(id => id == 513);
    }

    [Fact]
    public void Truncation_with_the_byte_level_vocabulary_decodes_the_dropped_bytes()
    {
        WriteByteLevelVocabulary();
        var tokenizer = ClipTokenizer.FromFolder(_folder.FullName);

        // 25 words of three byte tokens fill the 75 slots exactly; all six bytes of "naïve" are dropped.
        var prompt = string.Join(' ', Enumerable.Repeat("abc", 25)) + " naïve";

        var encoded = tokenizer.Encode(prompt);

        encoded.Count.ShouldBe(77);
        encoded.Ids[76].ShouldBe(513);
        encoded.Truncated.ShouldBeTrue();
        encoded.DroppedText.ShouldBe("naïve");
    }

    [Fact]
    public void A_missing_folder_names_vocab_json_and_the_fix()
    {
        var missing = Path.Combine(_folder.FullName, "no-such-model", "tokenizer");

        var error = Should.Throw<FileNotFoundException>(() => ClipTokenizer.FromFolder(missing));

        error.Message.ShouldContain("vocab.json");
        error.Message.ShouldContain("does not exist");
        error.Message.ShouldContain("tokenizer/");
    }

    [Fact]
    public void A_missing_merges_file_is_named_in_the_error()
    {
        File.Copy(Path.Combine(ClipVocabularyFolder.Path, "vocab.json"), FolderFile("vocab.json"));

        var error = Should.Throw<FileNotFoundException>(() => ClipTokenizer.FromFolder(_folder.FullName));

        error.FileName.ShouldBe(FolderFile("merges.txt"));
        error.Message.ShouldContain("'merges.txt' is missing");
    }

    [Fact]
    public void A_vocabulary_that_is_not_json_is_reported_as_invalid_data_naming_the_file()
    {
        File.WriteAllText(FolderFile("vocab.json"), "<html>404</html>");
        File.WriteAllText(FolderFile("merges.txt"), "#version: 0.2\n");

        var error = Should.Throw<InvalidDataException>(() => ClipTokenizer.FromFolder(_folder.FullName));

        error.Message.ShouldContain("vocab.json");
        error.Message.ShouldContain("not valid JSON");
    }

    [Fact]
    public void A_vocabulary_without_clip_special_tokens_is_rejected()
    {
        File.WriteAllText(FolderFile("vocab.json"), """{ "a": 0, "a</w>": 1 }""");
        File.WriteAllText(FolderFile("merges.txt"), "#version: 0.2\n");

        var error = Should.Throw<InvalidDataException>(() => ClipTokenizer.FromFolder(_folder.FullName));

        error.Message.ShouldContain("<|startoftext|>");
    }

    [Fact]
    public void A_merges_file_without_its_header_is_rejected()
    {
        File.Copy(Path.Combine(ClipVocabularyFolder.Path, "vocab.json"), FolderFile("vocab.json"));
        File.WriteAllText(FolderFile("merges.txt"), "i n\nt h\n");

        var error = Should.Throw<InvalidDataException>(() => ClipTokenizer.FromFolder(_folder.FullName));

        error.Message.ShouldContain("merges.txt");
        error.Message.ShouldContain("#version");
    }

    [Fact]
    public void A_pad_token_missing_from_the_vocabulary_is_rejected()
    {
        CopyRealVocabulary();
        File.WriteAllText(FolderFile("tokenizer_config.json"), """{ "pad_token": "[PAD]" }""");

        var error = Should.Throw<InvalidDataException>(() => ClipTokenizer.FromFolder(_folder.FullName));

        error.Message.ShouldContain("tokenizer_config.json");
        error.Message.ShouldContain("[PAD]");
    }

    /// <summary>
    /// The layout of the generated test models' tokenizer: 256 byte symbols, the same with "&lt;/w&gt;", then the two
    /// special tokens; merges.txt is the header alone. Ids here follow byte values so the expectations read plainly.
    /// </summary>
    private void WriteByteLevelVocabulary()
    {
        var vocabulary = new Dictionary<string, int>();
        for (var b = 0; b < 256; b++)
        {
            var symbol = ByteSymbol(b);
            vocabulary[symbol] = b;
            vocabulary[symbol + "</w>"] = 256 + b;
        }

        vocabulary["<|startoftext|>"] = 512;
        vocabulary["<|endoftext|>"] = 513;
        File.WriteAllText(FolderFile("vocab.json"), JsonSerializer.Serialize(vocabulary), Encoding.UTF8);
        File.WriteAllText(FolderFile("merges.txt"), "#version: 0.2\n");
    }

    // GPT-2's bytes_to_unicode, written out independently of the production table.
    private static string ByteSymbol(int b)
    {
        var printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        if (printable)
        {
            return ((char)b).ToString();
        }

        var offset = 0;
        for (var other = 0; other < b; other++)
        {
            if (!((other >= 33 && other <= 126) || (other >= 161 && other <= 172) || (other >= 174 && other <= 255)))
            {
                offset++;
            }
        }

        return ((char)(256 + offset)).ToString();
    }
}
