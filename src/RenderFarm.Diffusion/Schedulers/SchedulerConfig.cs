using System.Text.Json.Serialization;

namespace RenderFarm.Diffusion.Schedulers;

/// <summary>
/// The subset of a diffusers <c>scheduler/scheduler_config.json</c> that the samplers use.
/// Defaults are Stable Diffusion 1.x's published configuration.
/// </summary>
public sealed record SchedulerConfig
{
    [JsonPropertyName("num_train_timesteps")] public int NumTrainTimesteps { get; init; } = 1000;
    [JsonPropertyName("beta_start")] public double BetaStart { get; init; } = 0.00085;
    [JsonPropertyName("beta_end")] public double BetaEnd { get; init; } = 0.012;
    /// <summary><c>scaled_linear</c> (SD) or <c>linear</c>.</summary>
    [JsonPropertyName("beta_schedule")] public string BetaSchedule { get; init; } = "scaled_linear";
    [JsonPropertyName("steps_offset")] public int StepsOffset { get; init; } = 1;
    /// <summary><c>leading</c> (SD 1.x reference), <c>linspace</c> or <c>trailing</c>.</summary>
    [JsonPropertyName("timestep_spacing")] public string TimestepSpacing { get; init; } = "leading";
    [JsonPropertyName("set_alpha_to_one")] public bool SetAlphaToOne { get; init; }
    /// <summary><c>epsilon</c> (SD 1.x) or <c>v_prediction</c> (SD 2.x 768).</summary>
    [JsonPropertyName("prediction_type")] public string PredictionType { get; init; } = "epsilon";
    [JsonPropertyName("clip_sample")] public bool ClipSample { get; init; }
    /// <summary>LCM only: the length of the distillation schedule its timesteps are drawn from.</summary>
    [JsonPropertyName("original_inference_steps")] public int OriginalInferenceSteps { get; init; } = 50;
    /// <summary>LCM only: multiplies the timestep in the boundary-condition scalings c_skip and c_out.</summary>
    [JsonPropertyName("timestep_scaling")] public double TimestepScaling { get; init; } = 10.0;

    /// <summary>Stable Diffusion 1.x's published scheduler configuration.</summary>
    public static SchedulerConfig StableDiffusion1 { get; } = new();
}
