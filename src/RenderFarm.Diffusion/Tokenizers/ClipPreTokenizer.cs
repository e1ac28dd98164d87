using System.Buffers;
using System.Globalization;
using System.Text;

namespace RenderFarm.Diffusion.Tokenizers;

/// <summary>
/// Turns a prompt into the words that BPE sees: the text is cleaned (<see cref="ClipTextCleanup"/>), then CLIP's regex
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>
/// cuts it into words.
/// </summary>
/// <remarks>
/// <para><see cref="ClipTextCleanup.Original"/> is OpenAI's <c>simple_tokenizer</c>: <c>ftfy.fix_text</c>, HTML unescaped
/// twice, whitespace runs collapsed to one space, trimmed, Python's <c>lower()</c>. Of ftfy's fixes those that change
/// typed prompts are reproduced: control characters it removes (U+0000–U+0008, U+000B, U+000E–U+001F, U+007F,
/// U+206A–U+206F, U+FEFF, U+FFF9–U+FFFC), Latin ligatures (U+0132, U+0133, U+FB00–U+FB06) split, fullwidth ASCII
/// (U+FF01–U+FF5E) and the ideographic space made standard width, curly quotes made straight. Not reproduced: mojibake
/// repair (text that was decoded with the wrong code page), halfwidth katakana and the other halfwidth forms
/// (U+FF5F–U+FFEF), NFC (see below); HTML unescaping is .NET's <see cref="System.Net.WebUtility.HtmlDecode(string)"/>,
/// which leaves HTML5-only entity names and references without a semicolon as typed, where Python's
/// <c>html.unescape</c> decodes them.</para>
/// <para><see cref="ClipTextCleanup.NoFtfy"/> is transformers' slow <c>CLIPTokenizer</c> without ftfy: its
/// <c>BasicTokenizer(strip_accents=False, do_split_on_punc=False)</c> cleans and lower-cases the text and puts spaces
/// around CJK ideographs.</para>
/// <para>The regex is walked by hand over code points rather than run through <see cref="System.Text.RegularExpressions.Regex"/>:
/// .NET's regex classifies UTF-16 code units, so a letter outside the BMP (its surrogates are category Cs) would not
/// count as <c>\p{L}</c> as it does in Python.
/// Known gap: both cleanups apply NFC normalisation, which this build cannot, because the repository runs with
/// <c>InvariantGlobalization</c> and <see cref="string.Normalize()"/> is then a no-op for non-ASCII text. Prompts typed
/// with precomposed characters (what keyboards and browsers send) are unaffected; decomposed input (e.g. "e" followed
/// by U+0301) keeps the combining mark as a separate symbol.</para>
/// </remarks>
internal static class ClipPreTokenizer
{
    public const string StartOfText = "<|startoftext|>";
    public const string EndOfText = "<|endoftext|>";

    /// <summary>Appends the words of <paramref name="prompt"/> to <paramref name="words"/>, in order.</summary>
    public static void Split(string prompt, List<string> words, ClipTextCleanup cleanup = ClipTextCleanup.Original)
    {
        var text = cleanup == ClipTextCleanup.NoFtfy ? Clean(prompt) : CleanLikeSimpleTokenizer(prompt);
        var position = 0;
        while (position < text.Length)
        {
            if (text[position] == ' ')
            {
                position++;
                continue;
            }

            var length = MatchAt(text, position);
            words.Add(text.Substring(position, length));
            position += length;
        }
    }

    /// <summary>
    /// BasicTokenizer's part: drop NUL, U+FFFD and control/format/unassigned characters, turn whitespace into spaces,
    /// put spaces around CJK ideographs, split on whitespace, lower-case each word and join them with single spaces.
    /// </summary>
    internal static string Clean(string prompt)
    {
        var cleaned = new StringBuilder(prompt.Length + 8);
        // EnumerateRunes yields U+FFFD for a lone surrogate, which is then dropped like Python drops a Cs character.
        foreach (var rune in prompt.EnumerateRunes())
        {
            var value = rune.Value;
            if (value is 0 or 0xFFFD)
            {
                continue;
            }

            if (IsWhitespace(rune))
            {
                cleaned.Append(' ');
                continue;
            }

            if (IsControl(rune))
            {
                continue;
            }

            if (IsCjkIdeograph(value))
            {
                cleaned.Append(' ');
                AppendRune(cleaned, rune);
                cleaned.Append(' ');
                continue;
            }

            AppendRune(cleaned, rune);
        }

        var words = cleaned.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < words.Length; i++)
        {
            words[i] = ToLowerLikePython(words[i]);
        }

        return string.Join(' ', words);
    }

    /// <summary>
    /// <c>simple_tokenizer</c>'s part: <c>whitespace_clean(basic_clean(text)).lower()</c>, with ftfy's fixes as the
    /// type's remarks list them. Ideographs get no spaces: a run of letters of any script stays one word.
    /// </summary>
    internal static string CleanLikeSimpleTokenizer(string prompt)
    {
        var fixedText = new StringBuilder(prompt.Length);
        foreach (var rune in prompt.EnumerateRunes())
        {
            var value = rune.Value;
            if (IsFtfyControl(value))
            {
                continue;
            }

            switch (value)
            {
                case 0x3000:
                    fixedText.Append(' ');
                    break;
                case >= 0xFF01 and <= 0xFF5E:
                    fixedText.Append((char)(value - 0xFEE0));
                    break;
                case 0x02BC or (>= 0x2018 and <= 0x201B):
                    fixedText.Append('\'');
                    break;
                case >= 0x201C and <= 0x201F:
                    fixedText.Append('"');
                    break;
                default:
                    if (Ligature(value) is { } letters)
                    {
                        fixedText.Append(letters);
                    }
                    else
                    {
                        AppendRune(fixedText, rune);
                    }

                    break;
            }
        }

        var text = System.Net.WebUtility.HtmlDecode(System.Net.WebUtility.HtmlDecode(fixedText.ToString()));
        var collapsed = new StringBuilder(text.Length);
        var pendingSpace = false;
        foreach (var rune in text.EnumerateRunes())
        {
            if (Rune.IsWhiteSpace(rune))
            {
                pendingSpace = collapsed.Length > 0;
                continue;
            }

            if (pendingSpace)
            {
                collapsed.Append(' ');
                pendingSpace = false;
            }

            AppendRune(collapsed, rune);
        }

        return ToLowerLikePython(collapsed.ToString());
    }

    // ftfy's remove_control_chars: C0 controls other than tab, line feed, form feed and carriage return, DEL, the
    // deprecated format characters, the byte-order mark and the interlinear annotation characters.
    private static bool IsFtfyControl(int value) =>
        value is (>= 0x00 and <= 0x08) or 0x0B or (>= 0x0E and <= 0x1F) or 0x7F
            or (>= 0x206A and <= 0x206F) or 0xFEFF or (>= 0xFFF9 and <= 0xFFFC);

    // ftfy's fix_latin_ligatures.
    private static string? Ligature(int value) => value switch
    {
        0x0132 => "IJ",
        0x0133 => "ij",
        0xFB00 => "ff",
        0xFB01 => "fi",
        0xFB02 => "fl",
        0xFB03 => "ffi",
        0xFB04 => "ffl",
        0xFB05 => "\u017Ft",
        0xFB06 => "st",
        _ => null,
    };

    /// <summary>Length of CLIP's regex match starting at <paramref name="start"/> (never a space).</summary>
    private static int MatchAt(string text, int start)
    {
        // The alternatives are tried in the regex's order: special tokens, contractions, letters, one number, other.
        if (string.CompareOrdinal(text, start, StartOfText, 0, StartOfText.Length) == 0)
        {
            return StartOfText.Length;
        }

        if (string.CompareOrdinal(text, start, EndOfText, 0, EndOfText.Length) == 0)
        {
            return EndOfText.Length;
        }

        if (text[start] == '\'')
        {
            var contraction = ContractionLength(text, start);
            if (contraction > 0)
            {
                return contraction;
            }
        }

        var first = RuneAt(text, start);
        var kind = Classify(first);
        if (kind == CharacterKind.Number)
        {
            return first.Utf16SequenceLength;
        }

        var end = start + first.Utf16SequenceLength;
        while (end < text.Length && text[end] != ' ')
        {
            var next = RuneAt(text, end);
            if (Classify(next) != kind)
            {
                break;
            }

            end += next.Utf16SequenceLength;
        }

        return end - start;
    }

    private static int ContractionLength(string text, int start)
    {
        var remaining = text.Length - start;
        if (remaining >= 3)
        {
            var pair = text.AsSpan(start + 1, 2);
            if (pair is "re" or "ve" or "ll")
            {
                return 3;
            }
        }

        return remaining >= 2 && text[start + 1] is 's' or 't' or 'm' or 'd' ? 2 : 0;
    }

    private enum CharacterKind
    {
        Letter,
        Number,
        Other,
    }

    private static CharacterKind Classify(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharacterKind.Letter,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
            => CharacterKind.Number,
        _ => CharacterKind.Other,
    };

    private static Rune RuneAt(string text, int index) =>
        Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out _) == OperationStatus.Done ? rune : Rune.ReplacementChar;

    private static void AppendRune(StringBuilder builder, Rune rune)
    {
        Span<char> buffer = stackalloc char[2];
        var written = rune.EncodeToUtf16(buffer);
        builder.Append(buffer[..written]);
    }

    // BasicTokenizer's _is_whitespace (space, \t, \n, \r, Zs), plus Zl/Zp, which its later str.split() also splits on.
    private static bool IsWhitespace(Rune rune) =>
        rune.Value is ' ' or '\t' or '\n' or '\r'
        || Rune.GetUnicodeCategory(rune) is UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator
            or UnicodeCategory.ParagraphSeparator;

    // BasicTokenizer's _is_control: any category starting with "C" (tab, newline and return were handled as whitespace).
    private static bool IsControl(Rune rune) => Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control
        or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
        or UnicodeCategory.OtherNotAssigned;

    // BasicTokenizer's _is_chinese_char: the CJK Unified Ideographs blocks only (not kana or hangul).
    private static bool IsCjkIdeograph(int value) =>
        value is >= 0x4E00 and <= 0x9FFF
            or >= 0x3400 and <= 0x4DBF
            or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F
            or >= 0x2B820 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF
            or >= 0x2F800 and <= 0x2FA1F;

    /// <summary>
    /// Python's <c>str.lower()</c>, which uses full case mapping where .NET uses simple mapping: the two differences
    /// that are not language-specific are U+0130 (becomes "i" + U+0307) and a capital sigma at the end of a word
    /// (becomes final sigma U+03C2).
    /// </summary>
    private static string ToLowerLikePython(string word)
    {
        var lower = word.ToLowerInvariant();
        if (!word.Contains('\u0130', StringComparison.Ordinal) && !word.Contains('\u03A3', StringComparison.Ordinal))
        {
            return lower;
        }

        // Same length as the input: simple lower-casing maps each UTF-16 unit to one unit.
        var builder = new StringBuilder(word.Length + 4);
        for (var i = 0; i < word.Length; i++)
        {
            switch (word[i])
            {
                case '\u0130':
                    builder.Append("i\u0307");
                    break;
                case '\u03A3':
                    builder.Append(IsFinalSigma(word, i) ? '\u03C2' : '\u03C3');
                    break;
                default:
                    builder.Append(lower[i]);
                    break;
            }
        }

        return builder.ToString();
    }

    // Unicode's Final_Sigma: a cased letter before (skipping case-ignorables) and no cased letter after.
    private static bool IsFinalSigma(string word, int index)
    {
        var before = index - 1;
        while (before >= 0 && IsCaseIgnorable(word[before]))
        {
            before--;
        }

        if (before < 0 || !IsCased(word[before]))
        {
            return false;
        }

        var after = index + 1;
        while (after < word.Length && IsCaseIgnorable(word[after]))
        {
            after++;
        }

        return after >= word.Length || !IsCased(word[after]);
    }

    private static bool IsCased(char c) => char.GetUnicodeCategory(c) is UnicodeCategory.UppercaseLetter
        or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(char c) =>
        c is '\'' or '.' or ':' or '\u00B7' or '\u2018' or '\u2019'
        || char.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;
}
