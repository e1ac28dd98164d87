using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace RenderFarm.Diffusion.Models;

/// <summary>
/// One ONNX model file (text encoder, UNet, VAE half) with an explicit session lifetime: a memory policy decides when
/// it is loaded and released, so sessions are never created behind the policy's back.
/// </summary>
public sealed class OnnxComponent : IDisposable
{
    private ExecutionOptions _options;
    private readonly IReadOnlyList<TensorRequirement> _inputs;
    private readonly IReadOnlyList<TensorRequirement> _outputs;
    private InferenceSession? _session;

    private readonly Func<byte[], byte[]>? _rewrite;

    /// <summary>
    /// A component of the file at <paramref name="path"/> whose session must declare <paramref name="inputs"/> and
    /// <paramref name="outputs"/>; a <paramref name="rewrite"/>, when given, edits the file's bytes before each load
    /// (a graph edit such as <see cref="GroupNormRewrite"/>) and the file itself is never changed.
    /// </summary>
    public OnnxComponent(string path, ExecutionOptions options, IReadOnlyList<TensorRequirement> inputs, IReadOnlyList<TensorRequirement> outputs,
        Func<byte[], byte[]>? rewrite = null)
    {
        Path = path;
        _options = options;
        _inputs = inputs;
        _outputs = outputs;
        _rewrite = rewrite;
    }

    public string Path { get; }
    public bool IsLoaded => _session is not null;
    /// <summary>The options the next session is created with.</summary>
    public ExecutionOptions Options => _options;
    /// <summary>The provider the session runs on; known once loaded.</summary>
    public string? Provider { get; private set; }

    /// <summary>The loaded session; loads it on first use.</summary>
    public InferenceSession Session => _session ?? Load();

    public InferenceSession Load()
    {
        if (_session is not null)
        {
            return _session;
        }

        if (!File.Exists(Path))
        {
            throw new ModelFormatException($"'{Path}' does not exist. Re-export the model or point --model at a complete folder.");
        }

        var provider = ExecutionProviders.Resolve(_options.Provider);
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        if (_options.IntraOpThreads > 0)
        {
            sessionOptions.IntraOpNumThreads = _options.IntraOpThreads;
        }

        if (provider == ExecutionProviders.Cuda)
        {
            AppendCuda(sessionOptions);
        }
        else if (_options.ArenaLimitBytes is { } limit)
        {
            CpuArena.Use(sessionOptions, limit);
        }

        InferenceSession session;
        try
        {
            session = _rewrite is null ? new InferenceSession(Path, sessionOptions) : new InferenceSession(_rewrite(File.ReadAllBytes(Path)), sessionOptions);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new ModelFormatException($"ONNX Runtime cannot load '{Path}': {ex.Message}", ex);
        }

        try
        {
            Check(session.InputMetadata, _inputs, "input");
            Check(session.OutputMetadata, _outputs, "output");
        }
        catch
        {
            session.Dispose();
            throw;
        }

        Provider = provider;
        _session = session;
        return session;
    }

    /// <summary>
    /// Switches the options future sessions use (the memory policy moves the VAE to the CPU this way); a loaded session
    /// with other options is released, since ONNX Runtime cannot change a session's provider or limits.
    /// </summary>
    public void Configure(ExecutionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options == _options)
        {
            return;
        }

        Unload();
        _options = options;
    }

    private void AppendCuda(SessionOptions sessionOptions)
    {
        using var cuda = new OrtCUDAProviderOptions();
        cuda.UpdateOptions(CudaProviderSettings(_options));
        sessionOptions.AppendExecutionProvider_CUDA(cuda);
    }

    /// <summary>The CUDA provider's options for <paramref name="options"/>: the device and, with a cap, its arena limit.</summary>
    internal static Dictionary<string, string> CudaProviderSettings(ExecutionOptions options)
    {
        var settings = new Dictionary<string, string> { ["device_id"] = options.CudaDeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (options.ArenaLimitBytes is { } limit)
        {
            settings["gpu_mem_limit"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture);
            // Grow by what is asked, not to the next power of two, so the limit is reached only by real need.
            settings["arena_extend_strategy"] = "kSameAsRequested";
        }

        return settings;
    }

    public void Unload()
    {
        _session?.Dispose();
        _session = null;
    }

    public NodeMetadata Input(string name) => Session.InputMetadata[name];
    public NodeMetadata Output(string name) => Session.OutputMetadata[name];

    public void Dispose() => Unload();

    private void Check(IReadOnlyDictionary<string, NodeMetadata> actual, IReadOnlyList<TensorRequirement> required, string kind)
    {
        foreach (var requirement in required)
        {
            if (!actual.TryGetValue(requirement.Name, out var meta))
            {
                throw new ModelFormatException(
                    $"'{Path}' has no {kind} '{requirement.Name}' (it has: {string.Join(", ", actual.Keys)}). " +
                    "The engine expects the tensor names of diffusers/Optimum's ONNX export; re-export the model with that tool.");
            }

            if (!requirement.ElementTypes.Contains(meta.ElementDataType))
            {
                throw new ModelFormatException(
                    $"'{Path}' {kind} '{requirement.Name}' is {meta.ElementDataType}; expected one of " +
                    $"{string.Join(", ", requirement.ElementTypes)}.");
            }

            if (meta.Dimensions.Length != requirement.Rank && !(requirement.AcceptsScalar && meta.Dimensions.Length == 0))
            {
                throw new ModelFormatException(
                    $"'{Path}' {kind} '{requirement.Name}' has rank {meta.Dimensions.Length}; expected rank {requirement.Rank}.");
            }
        }
    }
}

/// <summary>A tensor a component must declare: its name, accepted element types and rank.</summary>
public sealed record TensorRequirement(string Name, IReadOnlyList<TensorElementType> ElementTypes, int Rank)
{
    /// <summary>A rank-0 tensor is accepted too (current Optimum exports declare the UNet's timestep as a scalar).</summary>
    public bool AcceptsScalar { get; init; }

    public static IReadOnlyList<TensorElementType> FloatingPoint { get; } = [TensorElementType.Float, TensorElementType.Float16];
    public static TensorRequirement Floating(string name, int rank) => new(name, FloatingPoint, rank);
}
