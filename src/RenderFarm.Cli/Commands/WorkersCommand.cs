using System.CommandLine;
using System.Globalization;
using RenderFarm.Client;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm workers</c>: the workers the farm knows, from their heartbeats.</summary>
internal static class WorkersCommand
{
    public static Command Create()
    {
        var farm = FarmConnection.CreateOption();
        var command = new Command("workers", "List the farm's workers: state, liveness, device, memory, loaded models, current items.") { farm };
        command.SetAction((result, cancellationToken) => FarmConnection.RunAsync(result, farm, async client =>
        {
            var workers = await client.GetWorkersAsync(cancellationToken);
            var o = result.Out();
            var c = CultureInfo.InvariantCulture;
            o.WriteLine($"{"ID",-28}  {"STATE",-8}  {"LIVE",-4}  {"DEVICE",-24}  {"MEMORY GiB",-11}  {"BUDGET GiB",-10}  {"STRATEGY",-24}  {"MAX SIDE",8}  {"MODELS",-16}  {"ITEMS",5}  LAST HEARTBEAT");
            foreach (var w in workers.OrderBy(w => w.Id, StringComparer.Ordinal))
            {
                var memory = string.Create(c, $"{w.MemoryFreeBytes / 1073741824.0:0.0}/{w.MemoryTotalBytes / 1073741824.0:0.0}");
                var models = w.LoadedModels.Count == 0 ? "-" : string.Join(',', w.LoadedModels);
                o.WriteLine(string.Create(c, $"{w.Id,-28}  {w.State,-8}  {(w.Live ? "yes" : "no"),-4}  {w.Device,-24}  {memory,-11}  {w.MemoryBudgetBytes / 1073741824.0,-10:0.00}  {w.Strategy,-24}  {(w.MaxSquareSide == 0 ? "-" : w.MaxSquareSide.ToString(c)),8}  {models,-16}  {w.CurrentItems.Count,5}  {w.LastHeartbeat:u}"));
            }

            o.WriteLine(string.Create(c, $"{workers.Count(w => w.Live)} live of {workers.Count} worker(s)"));

            // Dead letters are work the farm's consumers gave up on: an operator looking at the fleet should see them.
            try
            {
                var deadLetters = await client.GetDeadLettersAsync(cancellationToken);
                o.WriteLine(deadLetters.Total == 0
                    ? "no dead letters"
                    : string.Create(c, $"{deadLetters.Total} dead letter(s): {string.Join(", ", deadLetters.Queues.Where(q => q.Messages > 0).Select(q => $"{q.Queue} {q.Messages}"))} (renderfarm dead-letters replay)"));
            }
            catch (RenderFarmApiException ex) when (ex.Status == 503)
            {
                o.WriteLine($"dead letters: not readable ({ex.Detail ?? ex.Message})");
            }

            return ExitCodes.Success;
        }, cancellationToken));
        return command;
    }
}
