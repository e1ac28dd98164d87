namespace RenderFarm.ModelGenerator;

/// <summary>
/// Generate-once model directories that are safe when several processes (test runs, farm workers) race:
/// each generates into its own temporary sibling and renames it into place, so readers never see half a model.
/// </summary>
internal static class ModelDirectory
{
    private static readonly string[] RequiredFiles =
    [
        ModelNames.TextEncoderFile, ModelNames.UnetFile, ModelNames.VaeDecoderFile, ModelNames.VaeEncoderFile,
        "model_index.json", "tokenizer/vocab.json", "scheduler/scheduler_config.json",
    ];

    public static string Ensure(string directory, string manifest, Action<string> write) =>
        Ensure(directory, manifest, write, ModelNames.ManifestFile, RequiredFiles);

    /// <summary>The same for folders of another layout (an upscaler): its own manifest file and required files.</summary>
    public static string Ensure(string directory, string manifest, Action<string> write, string manifestFile, IReadOnlyList<string> requiredFiles)
    {
        directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        bool IsCurrent(string d, string m) => ModelDirectory.IsCurrent(d, m, manifestFile, requiredFiles);
        if (IsCurrent(directory, manifest))
        {
            return directory;
        }

        string parent = Path.GetDirectoryName(directory) ?? throw new ArgumentException("A model directory cannot be a root.", nameof(directory));
        string leaf = Path.GetFileName(directory);
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{leaf}.tmp-{Guid.NewGuid():N}");
        try
        {
            write(temp);
            // A few rounds: each failed rename means another process changed the directory meanwhile.
            for (int attempt = 0; attempt < 5; attempt++)
            {
                if (IsCurrent(directory, manifest))
                {
                    return directory;
                }

                if (Directory.Exists(directory))
                {
                    string stale = Path.Combine(parent, $".{leaf}.stale-{Guid.NewGuid():N}");
                    try
                    {
                        Directory.Move(directory, stale);
                    }
                    catch (IOException)
                    {
                        continue;
                    }

                    TryDelete(stale);
                }

                try
                {
                    Directory.Move(temp, directory);
                    return directory;
                }
                catch (IOException) when (Directory.Exists(directory))
                {
                    // Another process renamed its copy in first; the next round checks whether it is current.
                }
            }

            return IsCurrent(directory, manifest)
                ? directory
                : throw new IOException($"Could not put a generated model in place at {directory}: it keeps changing.");
        }
        finally
        {
            TryDelete(temp);
        }
    }

    private static bool IsCurrent(string directory, string manifest, string manifestFile, IReadOnlyList<string> requiredFiles)
    {
        string path = Path.Combine(directory, manifestFile);
        try
        {
            return File.Exists(path)
                && File.ReadAllText(path) == manifest
                && requiredFiles.All(f => File.Exists(Path.Combine(directory, f)));
        }
        catch (IOException)
        {
            // Being replaced by another process right now: treat as not current and let the rename loop decide.
            return false;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
            // Best effort: a leftover hidden temp folder is harmless.
        }
        catch (UnauthorizedAccessException)
        {
            // Same as above.
        }
    }
}
