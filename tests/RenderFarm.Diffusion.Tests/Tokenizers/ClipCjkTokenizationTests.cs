using RenderFarm.Diffusion.Tokenizers;

namespace RenderFarm.Diffusion.Tests.Tokenizers;

/// <summary>
/// Chinese and Japanese prompts against the real CLIP ViT-L/14 vocabulary, under both cleanups. The default follows
/// OpenAI's simple_tokenizer (ftfy installed): CLIP's regex keeps a run of letters, ideographs and kana alike, as one
/// word, and ftfy makes fullwidth punctuation ASCII. transformers without ftfy puts spaces around each ideograph first.
/// Expected ids were worked out from vocab.json and merges.txt: each word's UTF-8 bytes as byte-alphabet symbols, the
/// last one with "&lt;/w&gt;", merges applied in rank order (ranks are merges.txt line numbers from 0 after the
/// header), then each symbol looked up.
/// </summary>
public sealed class ClipCjkTokenizationTests
{
    private const int Bos = 49406;
    private const int Eos = 49407;

    private static int[] Ids(ClipTokenizer tokenizer, string prompt)
    {
        var encoded = tokenizer.Encode(prompt);
        return encoded.Ids[..encoded.Count];
    }

    [Fact]
    public void The_original_cleanup_is_the_default() =>
        ClipVocabularyFolder.Tokenizer.Cleanup.ShouldBe(ClipTextCleanup.Original);

    [Fact]
    public void Chinese_letters_stay_one_word_and_fullwidth_punctuation_becomes_ascii_by_default() =>
        // "一只猫，坐在窗边" -> words "一只猫", "," (ftfy: U+FF0C -> ","), "坐在窗边".
        // 一只猫 = E4 B8 80 E5 8F AA E7 8C AB: merges (ä, ¸) 19247, (å, ı) 34005 -> "ä¸" 19759, "Ģ" 222, "åı" 34517,
        //   "ª" 103, "ç" 163, "Į" 234, "«</w>" 360.  ","</w> 267.
        // 坐在窗边 = E5 9D 90 E5 9C A8 E7 AA 97 E8 BE B9: merge (å, ľ) 37234 -> "å" 161, "Ŀ" 251, "Ĳ" 238, "åľ" 37746,
        //   "¨" 101, "ç" 163, "ª" 103, "Ĺ" 245, "è" 164, "¾" 122, "¹</w>" 373.
        Ids(ClipVocabularyFolder.Tokenizer, "一只猫，坐在窗边").ShouldBe(
            [Bos, 19759, 222, 34517, 103, 163, 234, 360, 267, 161, 251, 238, 37746, 101, 163, 103, 245, 164, 122, 373, Eos]);

    [Fact]
    public void Without_ftfy_each_chinese_ideograph_is_a_word_and_fullwidth_punctuation_stays()
    {
        // "一" -> "ä¸" 19759 + "Ģ</w>" 478; "只" -> "åı" 34517 + "ª</w>" 359; "猫" -> 163, 234, "«</w>" 360;
        // "，" (EF BC 8C, no merge) -> "ï" 171, "¼" 120, "Į</w>" 490; "坐" -> 161, 251, "Ĳ</w>" 494;
        // "在" -> "åľ" 37746 + "¨</w>" 357; "窗" -> 163, 103, "Ĺ</w>" 501; "边" -> 164, 122, "¹</w>" 373.
        Ids(ClipVocabularyFolder.NoFtfyTokenizer, "一只猫，坐在窗边").ShouldBe(
            [Bos, 19759, 478, 34517, 359, 163, 234, 360, 171, 120, 490, 161, 251, 494, 37746, 357, 163, 103, 501, 164, 122, 373, Eos]);
    }

    [Fact]
    public void Japanese_kanji_and_kana_run_together_by_default()
    {
        // "桜の木の下で、猫が眠る" -> "桜の木の下で", "、", "猫が眠る" (U+3001 is punctuation; ftfy leaves it).
        // 桜の木の下で: merges (ã, ģ) 4301, (æ, ľ) 18765, (ä, ¸) 19247, (ãģ, ®) 21063, (ĭ, ãģ) 35706, (¡, ľ) 43479 ->
        //   "æ" 162, "¡ľ" 43991, "ãģ®" 21575, "æľ" 19277, "¨" 101, "ãģ®" 21575, "ä¸" 19759, "ĭãģ" 36218, "§</w>" 356.
        // 、 = E3 80 81: (ã, Ģ) 3580, (ãĢ, ģ</w>) 44750 -> "ãĢģ</w>" 45262.
        // 猫が眠る: (ã, Ĥ) 3397, (ã, ģ) 4301, (ç, ľ) 32928 -> 163, 234, "«" 104, "ãģ" 4813, "Į" 234, "çľ" 33440,
        //   "ł" 254, "ãĤ" 3909, "ĭ</w>" 489.
        Ids(ClipVocabularyFolder.Tokenizer, "桜の木の下で、猫が眠る").ShouldBe(
            [Bos, 162, 43991, 21575, 19277, 101, 21575, 19759, 36218, 356, 45262, 163, 234, 104, 4813, 234, 33440, 254, 3909, 489, Eos]);
    }

    [Fact]
    public void Without_ftfy_each_kanji_is_a_word_while_kana_between_them_stays_together()
    {
        // Words: 桜 の 木 の 下 で 、 猫 が 眠 る ("で、" splits in the regex: letter, then punctuation).
        // 桜 -> 162, "¡" 94, "ľ</w>" 506; の -> 4813, "®</w>" 362; 木 -> 19277, "¨</w>" 357; 下 -> 19759, "ĭ</w>" 489;
        // で -> 4813, "§</w>" 356; 、 -> 45262; 猫 -> 163, 234, 360; が -> 4813, "Į</w>" 490; 眠 -> 33440, "ł</w>" 510;
        // る -> 3909, 489.
        Ids(ClipVocabularyFolder.NoFtfyTokenizer, "桜の木の下で、猫が眠る").ShouldBe(
            [Bos, 162, 94, 506, 4813, 362, 19277, 357, 4813, 362, 19759, 489, 4813, 356, 45262, 163, 234, 360, 4813, 490, 33440, 510, 3909, 489, Eos]);
    }

    [Fact]
    public void Kana_after_an_ideograph_joins_it_by_default_and_not_without_ftfy()
    {
        // "猫ねこ": one word by default, so "«" has no word end (104, not 360).
        Ids(ClipVocabularyFolder.Tokenizer, "猫ねこ").ShouldBe([Bos, 163, 234, 104, 4813, 255, 4813, 497, Eos]);
        Ids(ClipVocabularyFolder.NoFtfyTokenizer, "猫ねこ").ShouldBe([Bos, 163, 234, 360, 4813, 255, 4813, 497, Eos]);
    }

    [Fact]
    public void Fullwidth_latin_and_the_ideographic_space_are_made_standard_width_by_default()
    {
        // ftfy: "ＳＤ　風景" -> "SD 風景" -> lower "sd" 4159 (merge (s, d</w>) 3647), "風景" -> "é" 165, "¢" 95, "¨" 101,
        // "æĻ" 48132, "¯</w>" 363.
        Ids(ClipVocabularyFolder.Tokenizer, "ＳＤ　風景").ShouldBe([Bos, 4159, 165, 95, 101, 48132, 363, Eos]);

        // Without ftfy U+3000 is only whitespace and "ｓｄ" (lower-cased fullwidth, EF BD 93 EF BD 84) stays fullwidth:
        // "ï" 171, "½" 121, "ĵ" 241, "ï" 171, "½" 121, "Ħ</w>" 482; then "風" 165, 95, "¨</w>" 357 and "景" 48132, 363.
        Ids(ClipVocabularyFolder.NoFtfyTokenizer, "ＳＤ　風景").ShouldBe([Bos, 171, 121, 241, 171, 121, 482, 165, 95, 357, 48132, 363, Eos]);
    }

    [Fact]
    public void Curly_quotes_html_entities_and_ligatures_are_fixed_as_ftfy_and_html_unescape_do()
    {
        // “猫” -> "猫" with straight quotes: '"</w>' 257, 163, 234, 360, 257.
        Ids(ClipVocabularyFolder.Tokenizer, "“猫”").ShouldBe([Bos, 257, 163, 234, 360, 257, Eos]);
        // "&amp;" is unescaped (twice: "&amp;amp;" too) and "ﬁ" (U+FB01) becomes "fi".
        Ids(ClipVocabularyFolder.Tokenizer, "cat &amp;amp; dog").ShouldBe(Ids(ClipVocabularyFolder.Tokenizer, "cat & dog"));
        Ids(ClipVocabularyFolder.Tokenizer, "ﬁsh").ShouldBe(Ids(ClipVocabularyFolder.Tokenizer, "fish"));
        Ids(ClipVocabularyFolder.NoFtfyTokenizer, "cat &amp; dog").ShouldNotBe(Ids(ClipVocabularyFolder.NoFtfyTokenizer, "cat & dog"));
    }

    [Fact]
    public void Ascii_prompts_encode_the_same_under_both_cleanups()
    {
        const string prompt = "A lighthouse at dusk, it's 1024 steps... (masterpiece:1.2)";

        Ids(ClipVocabularyFolder.Tokenizer, prompt).ShouldBe(Ids(ClipVocabularyFolder.NoFtfyTokenizer, prompt));
    }
}
