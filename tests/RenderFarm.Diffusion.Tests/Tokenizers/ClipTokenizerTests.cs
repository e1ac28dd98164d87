using RenderFarm.Diffusion.Tokenizers;

namespace RenderFarm.Diffusion.Tests.Tokenizers;

/// <summary>
/// Encoding against the real CLIP ViT-L/14 vocabulary. Expected ids other than the two reference prompts were worked
/// out from vocab.json and merges.txt: each byte-level word (with "&lt;/w&gt;" on its last symbol) was looked up, and
/// where the whole word is not one entry, the merges were applied by hand in rank order.
/// </summary>
public sealed class ClipTokenizerTests
{
    private const int Bos = 49406;
    private const int Eos = 49407;

    private static ClipTokenizer Tokenizer => ClipVocabularyFolder.Tokenizer;

    private static int[] RealIds(string prompt)
    {
        var encoded = Tokenizer.Encode(prompt);
        return encoded.Ids[..encoded.Count];
    }

    [Fact]
    public void Special_ids_and_sizes_come_from_the_vocabulary()
    {
        Tokenizer.BosId.ShouldBe(Bos);
        Tokenizer.EosId.ShouldBe(Eos);
        Tokenizer.VocabularySize.ShouldBe(49408);
        Tokenizer.MaxLength.ShouldBe(77);
    }

    [Fact]
    public void A_photo_of_a_cat_matches_the_reference_ids() =>
        RealIds("a photo of a cat").ShouldBe([Bos, 320, 1125, 539, 320, 2368, Eos]);

    [Fact]
    public void A_lighthouse_at_dusk_matches_the_reference_ids() =>
        RealIds("a lighthouse at dusk").ShouldBe([Bos, 320, 13717, 536, 19708, Eos]);

    [Fact]
    public void Upper_case_folds_to_lower_case() =>
        RealIds("A PHOTO Of A Cat").ShouldBe(RealIds("a photo of a cat"));

    [Fact]
    public void Extra_whitespace_is_collapsed_and_stripped() =>
        RealIds("  a   photo\tof\n a \r\n cat  ").ShouldBe([Bos, 320, 1125, 539, 320, 2368, Eos]);

    [Fact]
    public void Punctuation_is_split_from_words_and_runs_of_it_stay_together() =>
        // ",</w>" 267, "dog</w>" 1929, "!</w>" 256, "...</w>" 678, "!!!</w>" 995.
        RealIds("a cat, a dog! cat... dog!!!").ShouldBe([Bos, 320, 2368, 267, 320, 1929, 256, 2368, 678, 1929, 995, Eos]);

    [Fact]
    public void Each_digit_is_its_own_token() =>
        // CLIP's regex matches one \p{N} at a time: "1</w>" 272, "0</w>" 271, "2</w>" 273, "4</w>" 275, "steps</w>" 5408.
        RealIds("1024 steps").ShouldBe([Bos, 272, 271, 273, 275, 5408, Eos]);

    [Fact]
    public void Contractions_are_split_off_as_their_own_tokens() =>
        // "it</w>" 585 + "'s</w>" 568, "don</w>" 847 + "'t</w>" 713, "we</w>" 649 + "'re</w>" 982.
        RealIds("it's don't we're").ShouldBe([Bos, 585, 568, 847, 713, 649, 982, Eos]);

    [Fact]
    public void A_word_with_an_accent_that_is_in_the_vocabulary_is_one_token() =>
        // "café" is c a f C3 A9 in UTF-8; merges end at the vocabulary entry "cafÃ©</w>" 15304.
        RealIds("Café").ShouldBe([Bos, 15304, Eos]);

    [Fact]
    public void A_word_with_an_accent_that_is_not_in_the_vocabulary_splits_into_byte_level_pieces() =>
        // "naïve": n a C3 AF v e. Merges by rank: (v, e</w>) 51, (n, a) 585, (Ã, ¯) 35177; nothing joins the three
        // pieces, giving "na" 1097, "Ã¯" 35689, "ve</w>" 563.
        RealIds("naïve").ShouldBe([Bos, 1097, 35689, 563, Eos]);

    [Fact]
    public void An_emoji_is_encoded_from_its_utf8_bytes() =>
        // U+1F431 = F0 9F 90 B1 -> merges (ð, Ł) 46, (ðŁ, Ĳ) 1562, (ðŁĲ, ±</w>) 22467 -> "ðŁĲ±</w>" 22979.
        RealIds("a cat 🐱").ShouldBe([Bos, 320, 2368, 22979, Eos]);

    [Fact]
    public void Special_token_text_in_a_prompt_maps_to_the_special_id() =>
        RealIds("a cat<|endoftext|>").ShouldBe([Bos, 320, 2368, Eos, Eos]);

    [Fact]
    public void An_empty_prompt_is_start_and_end_then_padding()
    {
        var encoded = Tokenizer.Encode(string.Empty);

        encoded.Count.ShouldBe(2);
        encoded.Truncated.ShouldBeFalse();
        encoded.DroppedText.ShouldBe(string.Empty);
        encoded.Ids.Length.ShouldBe(77);
        encoded.Ids[0].ShouldBe(Bos);
        encoded.Ids[1].ShouldBe(Eos);
        encoded.Ids[2..].ShouldAllBe(id => id == Eos);
    }

    [Fact]
    public void A_short_prompt_is_padded_to_max_length_with_the_end_token_for_sd1_folders()
    {
        var encoded = Tokenizer.Encode("a photo of a cat");

        Tokenizer.PadId.ShouldBe(Eos);
        encoded.Ids.Length.ShouldBe(77);
        encoded.Count.ShouldBe(7);
        encoded.Truncated.ShouldBeFalse();
        encoded.DroppedText.ShouldBe(string.Empty);
        encoded.Ids[7..].ShouldAllBe(id => id == Tokenizer.PadId);
    }

    [Fact]
    public void A_long_prompt_is_truncated_keeping_the_end_token_last_and_naming_the_dropped_words()
    {
        // 75 single-token words fill the room between start and end exactly; the rest is dropped.
        var prompt = string.Join(' ', Enumerable.Repeat("a", 75)) + " lighthouse at DUSK, 2";

        var encoded = Tokenizer.Encode(prompt);

        encoded.Count.ShouldBe(77);
        encoded.Ids.Length.ShouldBe(77);
        encoded.Ids[0].ShouldBe(Bos);
        encoded.Ids[1..76].ShouldAllBe(id => id == 320);
        encoded.Ids[76].ShouldBe(Eos);
        encoded.Truncated.ShouldBeTrue();
        encoded.DroppedText.ShouldBe("lighthouse at dusk , 2");
    }

    [Fact]
    public void A_prompt_that_exactly_fills_the_window_is_not_truncated()
    {
        var encoded = Tokenizer.Encode(string.Join(' ', Enumerable.Repeat("cat", 75)));

        encoded.Count.ShouldBe(77);
        encoded.Ids[76].ShouldBe(Eos);
        encoded.Truncated.ShouldBeFalse();
        encoded.DroppedText.ShouldBe(string.Empty);
    }

    [Fact]
    public void Encoding_the_same_prompt_twice_gives_equal_ids() =>
        // The second call is served from the word cache.
        Tokenizer.Encode("a lighthouse at dusk").Ids.ShouldBe(Tokenizer.Encode("a lighthouse at dusk").Ids);
}
