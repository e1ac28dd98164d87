namespace RenderFarm.Domain.Tiling;

/// <summary>One tile of a hires image, in pixels of the final image.</summary>
/// <param name="Index">Row-major position in the grid (row × columns + column); the tile's identity on the queue.</param>
/// <param name="Column">Grid column.</param>
/// <param name="Row">Grid row.</param>
/// <param name="X">Left edge (inclusive).</param>
/// <param name="Y">Top edge (inclusive).</param>
/// <param name="Width">Width; a multiple of 8, so the tile is whole latent cells.</param>
/// <param name="Height">Height; a multiple of 8.</param>
public readonly record struct TileRect(int Index, int Column, int Row, int X, int Y, int Width, int Height)
{
    /// <summary>Right edge (exclusive).</summary>
    public int Right => X + Width;

    /// <summary>Bottom edge (exclusive).</summary>
    public int Bottom => Y + Height;

    public bool Contains(int x, int y) => x >= X && x < Right && y >= Y && y < Bottom;
}

/// <summary>A run of pixels along one axis: where a grid column or row starts and how long it is.</summary>
public readonly record struct TileSpan(int Start, int Length)
{
    /// <summary>One past the last pixel.</summary>
    public int End => Start + Length;
}
