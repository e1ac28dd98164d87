namespace RenderFarm.Diffusion.Tokenizers;

/// <summary>
/// GPT-2/CLIP <c>bytes_to_unicode</c>: every byte value gets a printable character so that BPE symbols are strings
/// without whitespace or control characters. Bytes that are already printable Latin-1 map to themselves; the other
/// 68 take the code points from U+0100 upwards, in byte order.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    public static char Encode(byte value) => ByteToChar[value];

    public static bool TryDecode(char symbol, out byte value) => CharToByte.TryGetValue(symbol, out value);

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var map = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++)
        {
            map[ByteToChar[b]] = (byte)b;
        }

        return map;
    }
}
