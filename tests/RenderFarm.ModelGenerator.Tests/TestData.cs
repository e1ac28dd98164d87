namespace RenderFarm.ModelGenerator.Tests;

/// <summary>Seeded inputs: each test draws its own so tests stay independent of order.</summary>
internal static class TestData
{
    public const int BeginOfText = 512;
    public const int EndOfText = 513;

    public static float[] Uniform(Random random, int count, float amplitude) =>
        Enumerable.Range(0, count).Select(_ => (float)((random.NextDouble() * 2) - 1) * amplitude).ToArray();

    /// <summary>A random prompt's ids: BOS, <paramref name="length"/> byte tokens, then EOS padding to 77.</summary>
    public static int[] RandomPrompt(Random random, int length)
    {
        var ids = Enumerable.Repeat(EndOfText, 77).ToArray();
        ids[0] = BeginOfText;
        for (int k = 1; k <= length; k++)
        {
            ids[k] = random.Next(0, 512);
        }

        return ids;
    }

    /// <summary>What CLIPTokenizer produces with our byte-level vocabulary (lower-cased, words split on spaces).</summary>
    public static int[] Tokenize(string prompt)
    {
        // Vocabulary order is CLIP's: printable Latin-1 bytes first, then the remaining bytes in ascending order.
        var printable = Enumerable.Range('!', '~' - '!' + 1)
            .Concat(Enumerable.Range('¡', '¬' - '¡' + 1))
            .Concat(Enumerable.Range('®', 'ÿ' - '®' + 1))
            .ToList();
        var order = printable.Concat(Enumerable.Range(0, 256).Except(printable)).ToArray();
        var idOfByte = new int[256];
        for (int id = 0; id < 256; id++)
        {
            idOfByte[order[id]] = id;
        }

        var ids = new List<int> { BeginOfText };
        foreach (string word in prompt.ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(word);
            for (int i = 0; i < bytes.Length; i++)
            {
                ids.Add(idOfByte[bytes[i]] + (i == bytes.Length - 1 ? 256 : 0));
            }
        }

        ids.Add(EndOfText);
        return [.. ids.Take(77), .. Enumerable.Repeat(EndOfText, Math.Max(0, 77 - ids.Count))];
    }
}
