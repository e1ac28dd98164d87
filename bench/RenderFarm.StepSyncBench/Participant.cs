using System.Collections.Concurrent;
using System.Diagnostics;
using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using RenderFarm.Diffusion.Models;
using RenderFarm.Diffusion.Pipelines;

namespace RenderFarm.StepSyncBench;

/// <summary>What a participant did with one request: its reply message and where its time went.</summary>
internal sealed record ParticipantReply(byte[] Message, double DecodeMs, double ComputeMs, double EncodeMs, long FinishedAt)
{
    public double BusyMs => DecodeMs + ComputeMs + EncodeMs;
}

/// <summary>
/// A stand-in for one worker of the step-synchronous mode: its own UNet session (one intra-op thread, i.e. one core)
/// on its own thread, fed with messages. For each request it decodes the windows, runs both guidance halves of each
/// window in one batch-2 call, combines them with the guidance scale (guidance is linear, so guiding before the blend
/// equals guiding after it) and encodes the guided predictions into the reply.
/// </summary>
internal sealed class Participant : IDisposable
{
    private readonly Unet _unet;
    private readonly UnetBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly WindowPlan _plan;
    private readonly float _guidanceScale;
    private readonly float[] _window;
    private readonly float[] _guided;
    private readonly BlockingCollection<(byte[] Message, WireFormat Format, TaskCompletionSource<ParticipantReply> Reply)> _inbox = new();
    private readonly Thread _thread;

    public Participant(int id, string unetPath, WindowPlan plan, float[] hiddenStates, int hiddenWidth, float guidanceScale)
    {
        Id = id;
        _plan = plan;
        _guidanceScale = guidanceScale;
        _unet = new Unet(unetPath, new ExecutionOptions { Provider = ExecutionProviderPreference.Cpu, IntraOpThreads = 1 });
        _binding = _unet.Bind(2, plan.WindowHeight, plan.WindowWidth, new PromptConditioning(hiddenStates, hiddenWidth));
        _window = new float[plan.WindowLength];
        _guided = new float[plan.WindowLength];
        _thread = new Thread(Serve) { IsBackground = true, Name = $"participant {id}" };
        _thread.Start();
    }

    public int Id { get; }

    /// <summary>Queues a request; the task completes when this participant has replied.</summary>
    public Task<ParticipantReply> SendAsync(byte[] message, WireFormat format)
    {
        var reply = new TaskCompletionSource<ParticipantReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _inbox.Add((message, format, reply));
        return reply.Task;
    }

    private void Serve()
    {
        foreach (var (message, format, reply) in _inbox.GetConsumingEnumerable())
        {
            try
            {
                reply.SetResult(Process(message, format));
            }
#pragma warning disable CA1031 // The failure goes back to the coordinator, which rethrows it; the thread must not die.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                reply.SetException(ex);
            }
        }
    }

    private ParticipantReply Process(byte[] request, WireFormat format)
    {
        var start = Stopwatch.GetTimestamp();
        var (timestep, indices) = Wire.ReadHeader(request);
        var windows = indices.Select(i => _plan.Windows[i]).ToArray();
        var replyMessage = Wire.Allocate(windows.Length, _plan.WindowLength, format);
        Wire.WriteHeader(replyMessage, timestep, windows);
        double decodeMs = 0, computeMs = 0, encodeMs = 0;
        var input = _binding.Input.Data;
        var output = _binding.Output.Data;
        var half = _plan.WindowLength;
        for (var slot = 0; slot < windows.Length; slot++)
        {
            var t0 = Stopwatch.GetTimestamp();
            Wire.Decode(Wire.Payload(request, windows.Length, slot, half, format), input.AsSpan(0, half), format);
            // Unconditional half first, then the conditional half, as diffusers orders the rows.
            input.AsSpan(0, half).CopyTo(input.AsSpan(half, half));
            var t1 = Stopwatch.GetTimestamp();
            _binding.Run(timestep, _runOptions);
            var unconditional = output.AsSpan(0, half);
            TensorPrimitives.Subtract(output.AsSpan(half, half), unconditional, _guided);
            TensorPrimitives.MultiplyAdd(_guided, _guidanceScale, unconditional, _guided);
            var t2 = Stopwatch.GetTimestamp();
            Wire.Encode(_guided, Wire.Payload(replyMessage, windows.Length, slot, half, format), format);
            var t3 = Stopwatch.GetTimestamp();
            decodeMs += Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds;
            computeMs += Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds;
            encodeMs += Stopwatch.GetElapsedTime(t2, t3).TotalMilliseconds;
        }

        // Header parsing and the reply's allocation count as codec time too.
        var total = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        decodeMs += total - decodeMs - computeMs - encodeMs;
        return new ParticipantReply(replyMessage, decodeMs, computeMs, encodeMs, Stopwatch.GetTimestamp());
    }

    public void Dispose()
    {
        _inbox.CompleteAdding();
        _thread.Join();
        _inbox.Dispose();
        _binding.Dispose();
        _runOptions.Dispose();
        _unet.Component.Dispose();
    }
}
