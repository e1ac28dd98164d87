using System.Text.Json;

namespace RenderFarm.Cli.Tests;

[Collection(CliCollection.Name)]
public sealed class TokenizeCommandTests(CliModels models)
{
    [Fact]
    public async Task Json_output_has_the_real_clip_ids()
    {
        var tokenizer = Path.Combine(Cli.SharedFolder(), "clip-vit-l-14-tokenizer");

        var (exitCode, stdout, stderr) = await Cli.RunAsync("tokenize", "a photo of a cat", "--tokenizer", tokenizer, "--json");

        exitCode.ShouldBe(0, stderr);
        using var json = JsonDocument.Parse(stdout);
        json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ShouldBe([49406, 320, 1125, 539, 320, 2368, 49407]);
        json.RootElement.GetProperty("count").GetInt32().ShouldBe(7);
        json.RootElement.GetProperty("truncated").GetBoolean().ShouldBeFalse();
    }

    [Fact]
    public async Task Text_cleanup_chooses_how_a_cjk_prompt_is_cut()
    {
        var tokenizer = Path.Combine(Cli.SharedFolder(), "clip-vit-l-14-tokenizer");

        var (original, originalOut, originalErr) = await Cli.RunAsync("tokenize", "猫ねこ", "--tokenizer", tokenizer, "--json");
        var (noFtfy, noFtfyOut, noFtfyErr) = await Cli.RunAsync("tokenize", "猫ねこ", "--tokenizer", tokenizer, "--json", "--text-cleanup", "no-ftfy");
        var (bad, _, badErr) = await Cli.RunAsync("tokenize", "猫", "--tokenizer", tokenizer, "--text-cleanup", "ftfy-ish");

        original.ShouldBe(0, originalErr);
        noFtfy.ShouldBe(0, noFtfyErr);
        // One word "猫ねこ" ("«" without a word end, 104) against "猫" + "ねこ" ("«</w>" 360).
        Ids(originalOut).ShouldBe([49406, 163, 234, 104, 4813, 255, 4813, 497, 49407]);
        Ids(noFtfyOut).ShouldBe([49406, 163, 234, 360, 4813, 255, 4813, 497, 49407]);
        bad.ShouldBe(2);
        badErr.ShouldContain("ftfy-ish");
    }

    private static int[] Ids(string json)
    {
        using var document = JsonDocument.Parse(json);
        return [.. document.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())];
    }

    [Fact]
    public async Task A_long_prompt_reports_truncation()
    {
        var tokenizer = Path.Combine(Cli.SharedFolder(), "clip-vit-l-14-tokenizer");
        var (exitCode, stdout, _) = await Cli.RunAsync("tokenize", string.Join(' ', Enumerable.Repeat("cat", 100)), "--tokenizer", tokenizer, "--json");

        exitCode.ShouldBe(0);
        using var json = JsonDocument.Parse(stdout);
        json.RootElement.GetProperty("count").GetInt32().ShouldBe(77);
        json.RootElement.GetProperty("truncated").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task The_model_tokenizer_is_used_with_model()
    {
        var (exitCode, stdout, _) = await Cli.RunAsync("tokenize", "ab", "--model", models.Oracle, "--json");

        exitCode.ShouldBe(0);
        using var json = JsonDocument.Parse(stdout);
        // The generated models' byte-level vocabulary is in CLIP's bytes_to_unicode order, which lists the printable
        // bytes '!'..'~' first: 'a' (0x61) is id 0x61 − 0x21 = 64, 'b</w>' is 256 + 65 = 321; BOS 512, EOS 513.
        json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ShouldBe([512, 64, 321, 513]);
    }

    [Fact]
    public async Task A_missing_tokenizer_folder_exits_with_2()
    {
        var (exitCode, _, stderr) = await Cli.RunAsync("tokenize", "x", "--tokenizer", Path.Combine(models.Scratch, "nothing"));
        exitCode.ShouldBe(2);
        stderr.ShouldContain("vocab.json");
    }
}
