using RenderFarm.Domain.Tiling;

namespace RenderFarm.Domain.Tests.Tiling;

public class TileGridTests
{
    public static TheoryData<int, int, int, int> Grids => new()
    {
        { 256, 256, 128, 32 },
        { 1024, 1024, 512, 64 },
        { 1536, 1536, 512, 64 },
        { 4096, 2304, 512, 64 },
        { 232, 232, 128, 32 },   // squeezed: three tiles overlap on each axis
        { 520, 136, 512, 256 },  // one cell past a tile, maximal overlap
        { 64, 1000, 128, 32 },   // narrower than a tile: one column of the image's width
        { 16384, 8192, 1024, 128 },
        { 200, 96, 96, 0 },      // no requested overlap
    };

    [Theory]
    [MemberData(nameof(Grids))]
    public void Tiles_cover_every_pixel_and_stay_inside_the_image(int width, int height, int tile, int overlap)
    {
        var grid = TileGrid.Create(width, height, tile, overlap);

        foreach (var t in grid.Tiles)
        {
            t.X.ShouldBeGreaterThanOrEqualTo(0);
            t.Y.ShouldBeGreaterThanOrEqualTo(0);
            t.Right.ShouldBeLessThanOrEqualTo(width);
            t.Bottom.ShouldBeLessThanOrEqualTo(height);
            (t.X % 8, t.Y % 8, t.Width % 8, t.Height % 8).ShouldBe((0, 0, 0, 0));
        }

        // The grid is a product of axis spans, so covering both axes without gaps covers the plane.
        Covered(grid.Columns, width).ShouldBeTrue();
        Covered(grid.Rows, height).ShouldBeTrue();
        grid.Tiles.Count.ShouldBe(grid.Columns.Count * grid.Rows.Count);
        grid.Tiles.Select(t => t.Index).ShouldBe(Enumerable.Range(0, grid.Tiles.Count));
        TileGrid.CountTiles(width, height, tile, overlap).ShouldBe(grid.Tiles.Count);
    }

    [Theory]
    [MemberData(nameof(Grids))]
    public void Neighbours_overlap_by_at_least_the_requested_overlap(int width, int height, int tile, int overlap)
    {
        var grid = TileGrid.Create(width, height, tile, overlap);

        foreach (var spans in new[] { grid.Columns, grid.Rows })
        {
            for (var i = 1; i < spans.Count; i++)
            {
                (spans[i - 1].End - spans[i].Start).ShouldBeGreaterThanOrEqualTo(overlap);
                spans[i].Start.ShouldBeGreaterThan(spans[i - 1].Start);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Grids))]
    public void Edge_tiles_are_shifted_inward_and_keep_the_full_tile_size(int width, int height, int tile, int overlap)
    {
        var grid = TileGrid.Create(width, height, tile, overlap);

        grid.Tiles.ShouldAllBe(t => t.Width == Math.Min(tile, width) && t.Height == Math.Min(tile, height));
        grid.Columns[^1].End.ShouldBe(width);
        grid.Rows[^1].End.ShouldBe(height);
    }

    [Fact]
    public void A_4096_square_with_512_tiles_and_64_overlap_is_nine_by_nine()
    {
        var grid = TileGrid.Create(4096, 4096, 512, 64);

        grid.Columns.Count.ShouldBe(9);
        grid.Columns.Select(c => c.Start).ShouldBe([0, 448, 896, 1344, 1792, 2240, 2688, 3136, 3584]);
    }

    [Theory]
    [MemberData(nameof(Grids))]
    public void Blend_weights_of_overlapping_tiles_sum_to_one_at_every_pixel(int width, int height, int tile, int overlap)
    {
        var grid = TileGrid.Create(width, height, tile, overlap);

        // Exhaustive over each axis (the 2-D weight is the product of the axis weights, so the 2-D sum is the product of
        // two sums that are each 1), and exhaustive in 2-D for the grids small enough to walk.
        AxisSums(grid.Columns, width, grid.ColumnWeights).ShouldAllBe(s => Math.Abs(s - 1) < 1e-6);
        AxisSums(grid.Rows, height, grid.RowWeights).ShouldAllBe(s => Math.Abs(s - 1) < 1e-6);
        if ((long)width * height <= 1536L * 1536L)
        {
            var sums = new double[width * height];
            foreach (var t in grid.Tiles)
            {
                for (var y = t.Y; y < t.Bottom; y++)
                {
                    for (var x = t.X; x < t.Right; x++)
                    {
                        sums[y * width + x] += grid.Weight(t.Index, x, y);
                    }
                }
            }

            sums.Min().ShouldBeGreaterThan(1 - 1e-5);
            sums.Max().ShouldBeLessThan(1 + 1e-5);
        }
    }

    [Fact]
    public void Weights_are_one_inside_a_tile_and_fall_off_smoothly_across_the_overlap()
    {
        var grid = TileGrid.Create(256, 256, 128, 32);
        var first = grid.ColumnWeights(0).ToArray();
        var overlapStart = grid.Columns[1].Start;

        first[..overlapStart].ShouldAllBe(w => w == 1f);
        var ramp = first[overlapStart..];
        ramp.ShouldAllBe(w => w > 0f && w < 1f);
        for (var i = 1; i < ramp.Length; i++)
        {
            ramp[i].ShouldBeLessThan(ramp[i - 1]);
            // A cosine over 32 px never steps by more than π/(2·32) ≈ 0.05 between neighbouring pixels.
            (ramp[i - 1] - ramp[i]).ShouldBeLessThan(0.05f);
        }

        // Symmetric cross-fade: the neighbour's ramp is the mirror image.
        var second = grid.ColumnWeights(1).ToArray()[..ramp.Length];
        second.ShouldBe(ramp.Reverse().ToArray(), tolerance: 1e-6f);
    }

    [Fact]
    public void Weights_outside_a_tile_are_zero()
    {
        var grid = TileGrid.Create(256, 256, 128, 32);
        grid.Weight(0, 200, 10).ShouldBe(0f);
        grid.Weight(grid.Tiles.Count - 1, 0, 0).ShouldBe(0f);
    }

    [Theory]
    [InlineData(100, 64, 64, 0)]
    [InlineData(64, 64, 60, 0)]
    [InlineData(64, 64, 64, 40)]
    [InlineData(64, 64, 64, 4)]
    [InlineData(64, 64, 64, -8)]
    public void Bad_geometry_is_refused(int width, int height, int tile, int overlap) =>
        Should.Throw<ArgumentOutOfRangeException>(() => TileGrid.Create(width, height, tile, overlap));

    private static bool Covered(IReadOnlyList<TileSpan> spans, int total)
    {
        var covered = new bool[total];
        foreach (var s in spans)
        {
            Array.Fill(covered, true, s.Start, s.Length);
        }

        return covered.All(c => c);
    }

    private delegate ReadOnlySpan<float> Profile(int index);

    private static double[] AxisSums(IReadOnlyList<TileSpan> spans, int total, Profile profile)
    {
        var sums = new double[total];
        for (var i = 0; i < spans.Count; i++)
        {
            var weights = profile(i);
            weights.Length.ShouldBe(spans[i].Length);
            for (var p = 0; p < weights.Length; p++)
            {
                sums[spans[i].Start + p] += weights[p];
            }
        }

        return sums;
    }
}
