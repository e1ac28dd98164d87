using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

/// <summary>
/// What the machine and the broker looked like during a run, sampled while the job renders: the deepest the run's
/// RabbitMQ queues got (from the management API) and the highest 1-minute load average (other engineers share the
/// machine, so a run's numbers mean little without it).
/// </summary>
/// <remarks>
/// The management API refreshes its message counts every few seconds (its statistics interval, 5 s by default), so a
/// short spike between two refreshes is not seen; a run of tens of seconds sees many refreshes.
/// </remarks>
internal sealed class RunSampler : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    // QueueNames.Render: the shared queue every worker takes units from (the bench does not reference Messaging).
    private const string SharedQueue = "renderfarm-render";

    private readonly HttpClient _management;
    private readonly string _vhost;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private RunSampler(HttpClient management, string vhost)
    {
        _management = management;
        _vhost = vhost;
        _loop = Task.Run(() => LoopAsync(_stop.Token));
    }

    /// <summary>Messages (ready and unacknowledged) in all of the run's queues together, the most any sample saw.</summary>
    public long PeakBrokerDepth { get; private set; }

    /// <summary>The most messages any sample saw on the shared render queue alone.</summary>
    public long PeakSharedQueueDepth { get; private set; }

    /// <summary>Samples of the broker that answered.</summary>
    public int BrokerSamples { get; private set; }

    /// <summary>The highest 1-minute load average sampled.</summary>
    public double PeakLoad { get; private set; }

    public static RunSampler Start(HttpClient management, string vhost) => new(management, vhost);

    /// <summary>Stops sampling; the peaks stay readable.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
            // Stopped mid-request.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    private async Task LoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            PeakLoad = Math.Max(PeakLoad, Machine.LoadAverage());
            try
            {
                var queues = await _management.GetFromJsonAsync<JsonElement>(
                    $"api/queues/{Uri.EscapeDataString(_vhost)}?columns=name,messages", ct);
                long total = 0;
                foreach (var queue in queues.EnumerateArray())
                {
                    // A queue created since the last statistics refresh has no count yet.
                    if (!queue.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Number)
                        continue;
                    var count = messages.GetInt64();
                    total += count;
                    if (queue.GetProperty("name").GetString() == SharedQueue)
                        PeakSharedQueueDepth = Math.Max(PeakSharedQueueDepth, count);
                }

                PeakBrokerDepth = Math.Max(PeakBrokerDepth, total);
                BrokerSamples++;
            }
            catch (HttpRequestException ex)
            {
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[farmbench] management API sample failed: {ex.Message}"));
            }

            await Task.Delay(Interval, ct);
        }
    }
}
