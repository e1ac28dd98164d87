using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Storage;

namespace RenderFarm.Worker.Rendering;

/// <summary>
/// Finished tiles read from the artifact store for <see cref="TileStitcher"/>. When the stitcher asks for the first
/// tile of a grid row, the whole row is fetched (a few at a time), since it asks for the rest of that row at once; a
/// tile is handed over and forgotten, so this source holds at most one row of tiles and never the image.
/// </summary>
internal sealed class HiresStoreTileSource : ITileSource, IAsyncDisposable
{
    /// <summary>Downloads and decodes in flight at once: enough to hide a store's latency, few enough not to flood it.</summary>
    internal const int MaxConcurrentFetches = 4;

    private readonly IArtifactStore _store;
    private readonly HiresLayout _layout;
    private readonly IReadOnlyList<string> _keys;
    private readonly Dictionary<int, Task<RgbImage>> _pending = [];
    private readonly SemaphoreSlim _fetchGate = new(MaxConcurrentFetches, MaxConcurrentFetches);
    private readonly CancellationTokenSource _abandon = new();

    public HiresStoreTileSource(IArtifactStore store, HiresLayout layout, IReadOnlyList<string> keys)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count != layout.Tiles.Count)
        {
            throw new ArgumentException($"The layout has {layout.Tiles.Count} tiles but {keys.Count} tile keys were given.", nameof(keys));
        }

        _store = store;
        _layout = layout;
        _keys = keys;
    }

    public async ValueTask<RgbImage> GetTileAsync(int tileIndex, CancellationToken cancellationToken)
    {
        if (!_pending.ContainsKey(tileIndex))
        {
            // Tiles are ordered by their top edge, so the row is the run of tiles from here sharing this top edge.
            var top = _layout.Tiles[tileIndex].Bounds.Y;
            for (var i = tileIndex; i < _layout.Tiles.Count && _layout.Tiles[i].Bounds.Y == top; i++)
            {
                if (!_pending.ContainsKey(i))
                {
                    _pending[i] = FetchAsync(i);
                }
            }
        }

        var fetch = _pending[tileIndex];
        _pending.Remove(tileIndex);
        return await fetch.WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        // A stitch that failed or was canceled leaves fetches running: stop them and observe their outcome.
        await _abandon.CancelAsync();
        foreach (var fetch in _pending.Values)
        {
            try
            {
                await fetch;
            }
            catch (Exception)
            {
                // Nobody wants this tile any more; the stitch's own failure is what the caller reports.
            }
        }

        _pending.Clear();
        _abandon.Dispose();
        _fetchGate.Dispose();
    }

    private async Task<RgbImage> FetchAsync(int tileIndex)
    {
        var token = _abandon.Token;
        var key = _keys[tileIndex];
        await _fetchGate.WaitAsync(token);
        try
        {
            var encoded = await HiresArtifacts.ReadAsync(_store, key, $"tile {tileIndex}", token);
            // Decoding is CPU work: off the stitcher's thread, so the next tile downloads while this one decodes.
            return await Task.Run(() => HiresArtifacts.Decode(encoded, key, $"tile {tileIndex}"), token);
        }
        finally
        {
            _fetchGate.Release();
        }
    }
}
