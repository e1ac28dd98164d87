using System.Globalization;

namespace RenderFarm.Coordinator.Datasets;

/// <summary>How a WebDataset job's items map onto shards and tar members.</summary>
public static class DatasetShards
{
    public const string Png = ".png";
    public const string Json = ".json";
    public const string Txt = ".txt";

    /// <summary>The shard of item <paramref name="index"/>: shards are consecutive index ranges of <paramref name="shardSize"/> items.</summary>
    public static int Of(long index, int shardSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardSize, 1);
        return checked((int)(index / shardSize));
    }

    /// <summary>Shards of a job of <paramref name="items"/> items.</summary>
    public static int Count(long items, int shardSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardSize, 1);
        return checked((int)((items + shardSize - 1) / shardSize));
    }

    /// <summary>The index range [From, To) of <paramref name="shard"/>.</summary>
    public static (long From, long To) Range(int shard, int shardSize, long items) =>
        ((long)shard * shardSize, Math.Min(((long)shard + 1) * shardSize, items));

    /// <summary>A sample's member in a tar: its key (<see cref="DatasetKeys.Of"/>) and <paramref name="extension"/>; WebDataset groups members by that key.</summary>
    public static string MemberName(long index, string extension) => DatasetKeys.Of(index) + extension;

    /// <summary>The shard's file name as exports lay it out: <c>{shard:D6}.tar</c>, as in the store.</summary>
    public static string FileName(int shard) => string.Create(CultureInfo.InvariantCulture, $"{shard:D6}.tar");
}
