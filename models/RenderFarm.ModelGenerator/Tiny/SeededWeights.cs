using System.Text;

namespace RenderFarm.ModelGenerator.Tiny;

/// <summary>
/// Deterministic weights: each tensor draws from its own SplitMix64 stream seeded by (model seed, tensor name),
/// so values do not depend on the order tensors are created in, nor on System.Random's implementation.
/// </summary>
internal sealed class SeededWeights(ulong seed)
{
    /// <summary>Uniform values with standard deviation gain/√fanIn (He/LeCun-style scaling keeps activations O(1)).</summary>
    public float[] Scaled(string name, int count, int fanIn, double gain = 1.0)
    {
        double halfWidth = Math.Sqrt(3.0) * gain / Math.Sqrt(fanIn);
        ulong state = seed ^ Hash(name);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double unit = (Next(ref state) >> 11) * (1.0 / (1UL << 53));
            values[i] = (float)(((2 * unit) - 1) * halfWidth);
        }

        return values;
    }

    public static float[] Constant(int count, float value) => Enumerable.Repeat(value, count).ToArray();

    private static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Hash(string name)
    {
        // FNV-1a over UTF-8: stable across processes, unlike string.GetHashCode.
        ulong hash = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            hash = (hash ^ b) * 0x100000001B3UL;
        }

        return hash;
    }
}
