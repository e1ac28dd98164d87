using Microsoft.Extensions.Options;
using RenderFarm.Contracts;
using RenderFarm.Coordinator.Options;
using RenderFarm.Coordinator.Persistence;
using RenderFarm.Domain.Policies;
using RenderFarm.Domain.Requests;
using RenderFarm.Domain.Tiling;

namespace RenderFarm.Coordinator.Placement;

/// <summary>
/// Refuses, at submission, a job that no live worker can take, naming the largest size the fleet can take. An
/// empty fleet accepts everything (the work waits for a worker), and so does a fleet with any worker whose limit
/// is unknown.
/// </summary>
internal sealed class PlacementAdmission(CoordinatorDbContext db, TimeProvider clock, IOptions<CoordinatorOptions> options)
{
    private readonly LeasePolicy _lease = options.Value.ToLeasePolicy();

    /// <summary>
    /// Null when some live worker can take the largest of <paramref name="itemSizes"/> (sizes the UNet runs at: for
    /// a hires job, the base and the tiles, not the target); otherwise field errors on width and height.
    /// </summary>
    public async Task<IDictionary<string, string[]>?> CheckAsync(string model, IEnumerable<(int Width, int Height)> itemSizes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(itemSizes);
        var sizes = itemSizes.ToList();
        if (sizes.Count == 0)
        {
            return null;
        }

        var (width, height) = sizes.MaxBy(s => (long)s.Width * s.Height);
        var liveAfter = _lease.ExpiredIfHeartbeatBefore(clock.GetUtcNow()).UtcDateTime;
        var live = await Fleet.ReadLiveAsync(db, liveAfter, withLoad: false, cancellationToken);
        var unit = new UnitShape(model, width, height);
        if (live.Count == 0 || live.Any(w => w.Fits(unit.Pixels)))
        {
            return null;
        }

        var message = PlacementPolicy.CannotFit(unit, live);
        return new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            ["width"] = [message],
            ["height"] = [message],
        };
    }

    /// <summary>
    /// The sizes a request's items render at: the request's size, none for an upscale job, or for a hires job its base render (unless the
    /// client gave the base) and its tiles (never larger than the tile side), whose defaults follow the model's native
    /// side <paramref name="modelSide"/>. Call only on a request that passed validation.
    /// </summary>
    public static IEnumerable<(int Width, int Height)> ItemSizes(JobRequest request, int modelSide = HiresLimits.DefaultModelSide)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!RenderModes.IsTiled(request.Mode))
        {
            yield return (request.Width, request.Height);
            yield break;
        }

        if (request.Mode == RenderModes.Upscale)
        {
            // Its tiles run the upscaler alone (no UNet), which each worker sizes to its own budget.
            yield break;
        }

        if (request.InitImage is null)
        {
            yield return request.BaseWidth is { } w && request.BaseHeight is { } h ? (w, h) : HiresRequestRules.DefaultBaseSize(request.Width, request.Height, modelSide);
        }

        var tile = request.Tile ?? HiresRequestRules.DefaultTile(modelSide);
        yield return (Math.Min(tile, request.Width), Math.Min(tile, request.Height));
    }
}
