using System.Diagnostics;

namespace RenderFarm.StepSyncBench;

/// <summary>
/// Configuration (b): the step-synchronous mode. Every step the coordinator scales the latent, cuts out each
/// participant's windows and encodes them, sends every participant its request, waits for all replies (the barrier),
/// decodes the guided predictions, blends them with the engine's window weights and advances the sampler.
/// Windows go to participants in proportion to their measured speed (<see cref="Assign"/>).
/// </summary>
internal sealed class StepSyncCoordinator : IDisposable
{
    private readonly Scene _scene;
    private readonly Participant[] _participants;
    private Window[][] _assignment;

    public StepSyncCoordinator(Scene scene, int participants)
    {
        _scene = scene;
        _participants = new Participant[participants];
        try
        {
            for (var i = 0; i < participants; i++)
            {
                _participants[i] = new Participant(i, scene.UnetPath, scene.Plan, scene.Hidden, scene.HiddenWidth, Scene.GuidanceScale);
            }
        }
        catch
        {
            Dispose();
            throw;
        }

        _assignment = [.. _participants.Select((_, i) => i == 0 ? scene.Plan.Windows.ToArray() : [])];
    }

    /// <summary>Windows per participant, in participant order.</summary>
    public IReadOnlyList<int> WindowCounts => [.. _assignment.Select(a => a.Length)];

    /// <summary>
    /// Each participant's time for one window (median of <paramref name="rounds"/>, after one warm-up), measured with
    /// all participants running at once, as they will during a step.
    /// </summary>
    public async Task<double[]> MeasureSpeedAsync(int rounds)
    {
        var window = _scene.Plan.Windows[0];
        var values = new float[_scene.Plan.WindowLength];
        var scaled = new float[_scene.InitialLatents.Length];
        var scheduler = _scene.NewScheduler();
        scheduler.ScaleModelInput(_scene.InitialLatents, scaled, 0);
        _scene.Plan.Extract(scaled, window, values);
        var samples = _participants.Select(_ => new List<double>()).ToArray();
        for (var round = 0; round <= rounds; round++)
        {
            var replies = await Task.WhenAll(_participants.Select(p =>
            {
                var message = Wire.Allocate(1, values.Length, WireFormat.Float32);
                Wire.WriteHeader(message, scheduler.Timesteps[0], [window]);
                Wire.Encode(values, Wire.Payload(message, 1, 0, values.Length, WireFormat.Float32), WireFormat.Float32);
                return p.SendAsync(message, WireFormat.Float32);
            })).ConfigureAwait(false);
            if (round > 0)
            {
                for (var i = 0; i < replies.Length; i++)
                {
                    samples[i].Add(replies[i].ComputeMs);
                }
            }
        }

        return [.. samples.Select(Statistics.Median)];
    }

    /// <summary>
    /// Splits the windows so the predicted finishing times (windows × time per window) are as equal as whole windows
    /// allow: each window goes to the participant that would finish it soonest. Participants get contiguous runs of
    /// windows in raster order, so a later transport could send the union of a participant's windows once.
    /// </summary>
    public void Assign(IReadOnlyList<double> msPerWindow)
    {
        var counts = new int[_participants.Length];
        for (var w = 0; w < _scene.Plan.Windows.Count; w++)
        {
            var best = Enumerable.Range(0, counts.Length).MinBy(i => (counts[i] + 1) * msPerWindow[i]);
            counts[best]++;
        }

        var next = 0;
        _assignment = [.. counts.Select(c =>
        {
            var share = _scene.Plan.Windows.Skip(next).Take(c).ToArray();
            next += c;
            return share;
        })];
    }

    public async Task<RunMeasurement> RunAsync(WireFormat format, int? stepLimit = null)
    {
        var plan = _scene.Plan;
        var scheduler = _scene.NewScheduler();
        var latents = (float[])_scene.InitialLatents.Clone();
        var scaled = new float[latents.Length];
        var blend = new float[latents.Length];
        var noise = new float[latents.Length];
        var window = new float[plan.WindowLength];
        var steps = new List<StepMeasurement>();
        for (var step = 0; step < (stepLimit ?? _scene.Steps); step++)
        {
            var t0 = Stopwatch.GetTimestamp();
            scheduler.ScaleModelInput(latents, scaled, step);
            var t1 = Stopwatch.GetTimestamp();
            var requests = _assignment.Select(windows =>
            {
                var message = Wire.Allocate(windows.Length, plan.WindowLength, format);
                Wire.WriteHeader(message, scheduler.Timesteps[step], windows);
                for (var slot = 0; slot < windows.Length; slot++)
                {
                    plan.Extract(scaled, windows[slot], window);
                    Wire.Encode(window, Wire.Payload(message, windows.Length, slot, plan.WindowLength, format), format);
                }

                return message;
            }).ToArray();
            var t2 = Stopwatch.GetTimestamp();

            var replies = await Task.WhenAll(_participants.Select((p, i) => p.SendAsync(requests[i], format))).ConfigureAwait(false);
            var barrier = replies.Max(r => r.FinishedAt);

            var t3 = Stopwatch.GetTimestamp();
            var decodeTicks = 0L;
            Array.Clear(blend);
            foreach (var reply in replies)
            {
                var (_, indices) = Wire.ReadHeader(reply.Message);
                for (var slot = 0; slot < indices.Length; slot++)
                {
                    var d0 = Stopwatch.GetTimestamp();
                    Wire.Decode(Wire.Payload(reply.Message, indices.Length, slot, plan.WindowLength, format), window, format);
                    decodeTicks += Stopwatch.GetTimestamp() - d0;
                    plan.Accumulate(window, plan.Windows[indices[slot]], blend);
                }
            }

            plan.Normalise(blend);
            scheduler.Step(blend, step, latents, noise);
            var t4 = Stopwatch.GetTimestamp();

            var stepMs = Stopwatch.GetElapsedTime(t0, t4).TotalMilliseconds;
            var decodeMs = Stopwatch.GetElapsedTime(0, decodeTicks).TotalMilliseconds;
            var participants = replies.Select((r, i) => new ParticipantStep(_assignment[i].Length, r.ComputeMs, r.DecodeMs + r.EncodeMs,
                Stopwatch.GetElapsedTime(r.FinishedAt, barrier).TotalMilliseconds, stepMs - r.BusyMs)).ToArray();
            steps.Add(new StepMeasurement(stepMs, requests.Sum(m => (long)m.Length), replies.Sum(r => (long)r.Message.Length),
                Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds + decodeMs,
                Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds + Stopwatch.GetElapsedTime(t3, t4).TotalMilliseconds - decodeMs,
                participants));
        }

        return new RunMeasurement(steps, latents);
    }

    public void Dispose()
    {
        foreach (var participant in _participants)
        {
            participant?.Dispose();
        }
    }
}
