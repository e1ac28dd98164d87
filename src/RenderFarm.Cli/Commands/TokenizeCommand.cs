using System.CommandLine;
using System.Text.Json;
using RenderFarm.Diffusion.Tokenizers;

namespace RenderFarm.Cli.Commands;

/// <summary><c>renderfarm tokenize PROMPT</c>: what CLIP sees of a prompt, and what it cuts.</summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var prompt = new Argument<string>("prompt") { Description = "The prompt to tokenize." };
        var model = new Option<string?>("--model") { Description = "Model folder whose tokenizer/ to use (default: the tiny model)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "A tokenizer folder (vocab.json, merges.txt) instead of a model's." };
        var json = new Option<bool>("--json") { Description = "Print {ids, count, truncated} as JSON." };
        var cleanup = new Option<string>("--text-cleanup")
        {
            Description = "original (OpenAI's simple_tokenizer with ftfy, what renders use: a run of CJK letters is one word) or no-ftfy (transformers without ftfy: each CJK ideograph is a word).",
            DefaultValueFactory = _ => "original",
        };
        cleanup.AcceptOnlyFromAmong("original", "no-ftfy");
        var command = new Command("tokenize", "Print the CLIP token ids of a prompt.") { prompt, model, tokenizer, json, cleanup };
        command.SetAction(result =>
        {
            if (result.GetValue(model) is not null && result.GetValue(tokenizer) is not null)
            {
                return result.Fail(ExitCodes.InvalidInput, "give either --model or --tokenizer, not both.");
            }

            ClipTokenizer clip;
            try
            {
                var directory = result.GetValue(tokenizer) ?? Path.Combine(ModelLocator.Resolve(result.GetValue(model)), "tokenizer");
                clip = ClipTokenizer.FromFolder(directory, result.GetValue(cleanup) == "no-ftfy" ? ClipTextCleanup.NoFtfy : ClipTextCleanup.Original);
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or InvalidDataException)
            {
                return result.Fail(ExitCodes.InvalidInput, ex.Message);
            }

            var tokens = clip.Encode(result.GetRequiredValue(prompt));
            var ids = tokens.Ids[..tokens.Count];
            if (result.GetValue(json))
            {
                result.Out().WriteLine(JsonSerializer.Serialize(new { ids, count = tokens.Count, truncated = tokens.Truncated }));
            }
            else
            {
                result.Out().WriteLine(string.Join(' ', ids));
                result.Out().WriteLine($"{tokens.Count} tokens (of {clip.MaxLength}){(tokens.Truncated ? $"; truncated, dropped: \"{tokens.DroppedText}\"" : "")}");
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
