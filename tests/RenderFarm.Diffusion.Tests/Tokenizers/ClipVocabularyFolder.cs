using RenderFarm.Diffusion.Tokenizers;

namespace RenderFarm.Diffusion.Tests.Tokenizers;

/// <summary>
/// The real CLIP ViT-L/14 tokenizer files, kept beside the repository in <c>shared/clip-vit-l-14-tokenizer</c>
/// (never committed into it), found by walking up from the test binaries.
/// </summary>
internal static class ClipVocabularyFolder
{
    private static readonly Lazy<string> LazyPath = new(Locate);
    private static readonly Lazy<ClipTokenizer> LazyTokenizer = new(() => ClipTokenizer.FromFolder(Path));
    private static readonly Lazy<ClipTokenizer> LazyNoFtfyTokenizer = new(() => ClipTokenizer.FromFolder(Path, ClipTextCleanup.NoFtfy));

    public static string Path => LazyPath.Value;

    /// <summary>The default: OpenAI's simple_tokenizer cleanup.</summary>
    public static ClipTokenizer Tokenizer => LazyTokenizer.Value;

    /// <summary>transformers' CLIPTokenizer without ftfy.</summary>
    public static ClipTokenizer NoFtfyTokenizer => LazyNoFtfyTokenizer.Value;

    private static string Locate()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = System.IO.Path.Combine(directory.FullName, "shared", "clip-vit-l-14-tokenizer");
            if (File.Exists(System.IO.Path.Combine(candidate, "vocab.json")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException(
            $"shared/clip-vit-l-14-tokenizer was not found above {AppContext.BaseDirectory}; the tests expect it beside the repository (../shared/clip-vit-l-14-tokenizer).");
    }
}
