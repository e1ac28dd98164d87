namespace RenderFarm.StepSyncBench;

/// <summary>One participant's share of one step: its windows, its own work, and the time it waited for the others.</summary>
/// <param name="Windows">Windows this participant ran.</param>
/// <param name="ComputeMs">UNet calls and the guidance combination.</param>
/// <param name="CodecMs">Decoding the request and encoding the reply.</param>
/// <param name="BarrierWaitMs">From this participant's reply to the last participant's reply: waiting on a slower peer.</param>
/// <param name="IdleMs">Step time less this participant's own work: the barrier wait plus the coordinator's serial work.</param>
internal sealed record ParticipantStep(int Windows, double ComputeMs, double CodecMs, double BarrierWaitMs, double IdleMs);

/// <summary>One denoising step of a run.</summary>
/// <param name="StepMs">Wall time of the whole step, coordinator work included.</param>
/// <param name="BytesSent">Serialised request bytes, all participants.</param>
/// <param name="BytesReceived">Serialised reply bytes, all participants.</param>
/// <param name="CoordinatorCodecMs">Coordinator: cutting windows out and encoding requests, decoding replies.</param>
/// <param name="CoordinatorBlendMs">Coordinator: weighted accumulation, normalisation, input scaling and the sampler step.</param>
/// <param name="Participants">Each participant's share, in participant order.</param>
internal sealed record StepMeasurement(
    double StepMs,
    long BytesSent,
    long BytesReceived,
    double CoordinatorCodecMs,
    double CoordinatorBlendMs,
    IReadOnlyList<ParticipantStep> Participants);

/// <summary>A whole run of one configuration: its steps and the latent it ended with.</summary>
internal sealed record RunMeasurement(IReadOnlyList<StepMeasurement> Steps, float[] FinalLatents)
{
    public double TotalMs => Steps.Sum(s => s.StepMs);
}

internal static class Statistics
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        if (sorted.Count == 0)
        {
            return double.NaN;
        }

        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>Largest and mean absolute difference of two latents.</summary>
    public static (double Max, double Mean) Difference(float[] a, float[] b)
    {
        double max = 0, sum = 0;
        for (var i = 0; i < a.Length; i++)
        {
            var d = Math.Abs((double)a[i] - b[i]);
            max = Math.Max(max, d);
            sum += d;
        }

        return (max, sum / a.Length);
    }

    public static double MaxAbs(float[] values) => values.Max(v => Math.Abs((double)v));
}
