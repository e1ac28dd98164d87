using System.CommandLine;
using System.Globalization;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm dead-letters list|replay</c>: messages the farm's consumers gave up on, and putting them back.</summary>
internal static class DeadLettersCommand
{
    public static Command Create()
    {
        var command = new Command("dead-letters", "Messages the farm's consumers gave up on (RabbitMQ _error queues): list them, replay them.");
        command.Add(CreateList());
        command.Add(CreateReplay());
        return command;
    }

    private static Command CreateList()
    {
        var farm = FarmConnection.CreateOption();
        var list = new Command("list", "Each _error queue of the farm and the messages waiting in it.") { farm };
        list.SetAction((result, cancellationToken) => FarmConnection.RunAsync(result, farm, async client =>
        {
            var report = await client.GetDeadLettersAsync(cancellationToken);
            var o = result.Out();
            var c = CultureInfo.InvariantCulture;
            o.WriteLine($"{"QUEUE",-48}  {"MESSAGES",8}");
            foreach (var queue in report.Queues)
            {
                o.WriteLine(string.Create(c, $"{queue.Queue,-48}  {queue.Messages,8}"));
            }
            o.WriteLine(string.Create(c, $"{report.Total} dead letter(s) in {report.Queues.Count} _error queue(s)"));
            return ExitCodes.Success;
        }, cancellationToken));
        return list;
    }

    private static Command CreateReplay()
    {
        var farm = FarmConnection.CreateOption();
        var queue = new Argument<string[]>("queue") { Description = "Queues whose _error messages go back to them (as `list` names them); none: every queue holding dead letters.", Arity = ArgumentArity.ZeroOrMore };
        var replay = new Command("replay", "Move dead letters back to the queues they failed on, to be consumed again.") { farm, queue };
        replay.SetAction((result, cancellationToken) => FarmConnection.RunAsync(result, farm, async client =>
        {
            var o = result.Out();
            var names = result.GetValue(queue) is { Length: > 0 } given
                ? given
                : [.. (await client.GetDeadLettersAsync(cancellationToken)).Queues.Where(q => q.Messages > 0).Select(q => q.Queue)];
            long total = 0;
            foreach (var name in names)
            {
                var replayed = await client.ReplayDeadLettersAsync(name, cancellationToken);
                total += replayed.Replayed;
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{replayed.Queue}: {replayed.Replayed} replayed"));
            }

            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{total} dead letter(s) replayed"));
            return ExitCodes.Success;
        }, cancellationToken));
        return replay;
    }
}
