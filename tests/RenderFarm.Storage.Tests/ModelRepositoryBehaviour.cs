using System.Security.Cryptography;
using System.Text;
using RenderFarm.Storage.Models;

namespace RenderFarm.Storage.Tests;

/// <summary>
/// What <see cref="ModelRepository"/> promises, on each store by a subclass. Every test pushes models under its own
/// random names and removes them afterwards, so tests share nothing.
/// </summary>
public abstract class ModelRepositoryBehaviour : IAsyncLifetime
{
    private readonly List<string> names = [];
    private readonly string scratch = Directory.CreateTempSubdirectory("renderfarm-model-repo-").FullName;

    protected abstract IArtifactStore Store { get; }

    /// <summary>Size of the largest file in the round-trip test: the S3 suite makes it big enough for a multipart upload.</summary>
    protected virtual int LargeFileSize => 300_000;

    private ModelRepository Repository => new(Store);

    private static CancellationToken Ct => CancellationToken.None;

    public Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var name in names)
        {
            var keys = new List<string>();
            await foreach (var info in Store.ListAsync(ArtifactKeys.ModelPrefix(name), Ct))
            {
                keys.Add(info.Key);
            }

            foreach (var key in keys)
            {
                await Store.DeleteAsync(key, Ct);
            }
        }

        Directory.Delete(scratch, recursive: true);
    }

    [Fact]
    public async Task A_pushed_model_is_listed_with_a_manifest_of_every_file_and_downloads_byte_identical()
    {
        var folder = ModelFolder("source", LargeFileSize);
        var name = NewName();

        var pushed = await Repository.PushAsync(name, folder, replace: false, progress: null, Ct);

        var expected = ExpectedFiles(folder);
        pushed.Name.ShouldBe(name);
        pushed.Format.ShouldBe(ModelManifest.CurrentFormat);
        pushed.Files.Select(f => f.Path).ShouldBe(expected.Keys.Order(StringComparer.Ordinal));
        foreach (var file in pushed.Files)
        {
            (file.Size, file.Sha256).ShouldBe(expected[file.Path], file.Path);
        }

        pushed.FileCount.ShouldBe(expected.Count);
        pushed.TotalBytes.ShouldBe(expected.Values.Sum(v => v.Size));
        pushed.CreatedAt.ShouldBeInRange(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1));

        var listed = (await Repository.ListAsync(Ct)).Single(m => m.Name == name);
        listed.Files.ShouldBe(pushed.Files);
        listed.CreatedAt.ShouldBe(pushed.CreatedAt);
        (await Repository.GetManifestAsync(name, Ct)).TotalBytes.ShouldBe(pushed.TotalBytes);

        var copy = Path.Combine(scratch, "copy");
        await Repository.DownloadAsync(pushed, copy, progress: null, Ct);
        foreach (var path in expected.Keys)
        {
            File.ReadAllBytes(Path.Combine(copy, path)).ShouldBe(File.ReadAllBytes(Path.Combine(folder, path)), path);
        }

        Directory.EnumerateFiles(copy, "*", SearchOption.AllDirectories).Count().ShouldBe(expected.Count);
    }

    [Fact]
    public async Task A_file_changed_in_the_store_after_the_push_fails_verification_and_is_not_left_behind()
    {
        var name = NewName();
        var pushed = await Repository.PushAsync(name, ModelFolder("source"), replace: false, progress: null, Ct);
        var unet = pushed.Files.Single(f => f.Path == "unet/model.onnx");
        var tampered = File.ReadAllBytes(Path.Combine(scratch, "source", "unet", "model.onnx"));
        tampered[tampered.Length / 2] ^= 0xFF;
        await Store.PutAsync(ArtifactKeys.ModelFile(name, unet.Path), new MemoryStream(tampered), "application/octet-stream", Ct);

        var target = Path.Combine(scratch, "download", "model.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var error = await Should.ThrowAsync<ModelIntegrityException>(() => Repository.DownloadFileAsync(name, unet, target, Ct));

        error.FilePath.ShouldBe("unet/model.onnx");
        error.Message.ShouldContain("SHA-256");
        error.Message.ShouldContain(unet.Sha256);
        File.Exists(target).ShouldBeFalse("the file that failed verification must not stay on disk");
    }

    [Fact]
    public async Task A_file_of_another_length_in_the_store_fails_verification()
    {
        var name = NewName();
        var pushed = await Repository.PushAsync(name, ModelFolder("source"), replace: false, progress: null, Ct);
        var vocab = pushed.Files.Single(f => f.Path == "tokenizer/vocab.json");
        await Store.PutAsync(ArtifactKeys.ModelFile(name, vocab.Path), new MemoryStream("{}"u8.ToArray()), "application/json", Ct);

        var error = await Should.ThrowAsync<ModelIntegrityException>(() => Repository.DownloadAsync(pushed, Path.Combine(scratch, "d"), null, Ct));

        error.FilePath.ShouldBe("tokenizer/vocab.json");
        error.Message.ShouldContain("bytes");
    }

    [Fact]
    public async Task A_push_stopped_after_its_first_file_leaves_the_model_unlisted_because_the_manifest_goes_last()
    {
        var name = NewName();
        using var stop = new CancellationTokenSource();
        var uploaded = new List<string>();
        var progress = new StopAfterFirstFile(stop, uploaded);

        await Should.ThrowAsync<OperationCanceledException>(() =>
            Repository.PushAsync(name, ModelFolder("source"), replace: false, progress, stop.Token));

        uploaded.Count.ShouldBe(1);
        (await Store.ExistsAsync(ArtifactKeys.ModelFile(name, uploaded[0]), Ct)).ShouldBeTrue("the first file was uploaded");
        (await Store.ExistsAsync(ModelRepository.ManifestKey(name), Ct)).ShouldBeFalse();
        (await Repository.ListAsync(Ct)).ShouldNotContain(m => m.Name == name);
        (await Repository.TryGetManifestAsync(name, Ct)).ShouldBeNull();

        // The same push completed later lists the model.
        await Repository.PushAsync(name, ModelFolder("source"), replace: false, progress: null, Ct);
        (await Repository.ListAsync(Ct)).ShouldContain(m => m.Name == name);
    }

    [Fact]
    public async Task A_second_push_of_a_name_is_refused_unless_replacing_which_also_removes_files_no_longer_listed()
    {
        var name = NewName();
        var folder = ModelFolder("source");
        await Repository.PushAsync(name, folder, replace: false, progress: null, Ct);

        var refused = await Should.ThrowAsync<ModelAlreadyInStoreException>(() => Repository.PushAsync(name, folder, replace: false, progress: null, Ct));
        refused.Message.ShouldContain(name);

        File.Delete(Path.Combine(folder, "tokenizer", "vocab.json"));
        File.WriteAllText(Path.Combine(folder, "model_index.json"), """{"_class_name": "OnnxStableDiffusionPipeline", "v": 2}""");
        var replaced = await Repository.PushAsync(name, folder, replace: true, progress: null, Ct);

        replaced.Files.ShouldNotContain(f => f.Path == "tokenizer/vocab.json");
        (await Store.ExistsAsync(ArtifactKeys.ModelFile(name, "tokenizer/vocab.json"), Ct)).ShouldBeFalse("a file the new manifest does not list is removed");
        (await Repository.GetManifestAsync(name, Ct)).Files.Single(f => f.Path == "model_index.json").Sha256
            .ShouldBe(Sha256(File.ReadAllBytes(Path.Combine(folder, "model_index.json"))));
    }

    [Theory]
    [InlineData("")]
    [InlineData("../escape")]
    [InlineData("a/b")]
    [InlineData(".hidden")]
    [InlineData("-dash-first")]
    [InlineData("with space")]
    public async Task Names_outside_the_rule_are_refused_before_anything_is_written(string name)
    {
        var error = await Should.ThrowAsync<ArgumentException>(() => Repository.PushAsync(name, ModelFolder("source"), replace: false, progress: null, Ct));
        error.Message.ShouldContain(ModelNames.Rule);
        ModelNames.IsValid(new string('a', ModelNames.MaxLength)).ShouldBeTrue();
        ModelNames.IsValid(new string('a', ModelNames.MaxLength + 1)).ShouldBeFalse();
    }

    [Fact]
    public async Task Folders_that_cannot_be_pushed_are_refused_with_the_reason()
    {
        var missing = Path.Combine(scratch, "missing");
        (await Should.ThrowAsync<DirectoryNotFoundException>(() => Repository.PushAsync(NewName(), missing, false, null, Ct)))
            .Message.ShouldContain(missing);

        var empty = Directory.CreateDirectory(Path.Combine(scratch, "empty")).FullName;
        File.WriteAllText(Path.Combine(empty, ".only-hidden"), "x");
        (await Should.ThrowAsync<ArgumentException>(() => Repository.PushAsync(NewName(), empty, false, null, Ct)))
            .Message.ShouldContain("no files");

        var reserved = ModelFolder("reserved");
        File.WriteAllText(Path.Combine(reserved, ModelRepository.ManifestFileName), "{}");
        (await Should.ThrowAsync<ArgumentException>(() => Repository.PushAsync(NewName(), reserved, false, null, Ct)))
            .Message.ShouldContain("reserved");
    }

    [Fact]
    public async Task A_model_not_in_the_store_is_named_in_the_error()
    {
        var name = NewName();

        (await Repository.TryGetManifestAsync(name, Ct)).ShouldBeNull();
        var error = await Should.ThrowAsync<ModelNotInStoreException>(() => Repository.GetManifestAsync(name, Ct));

        error.Name.ShouldBe(name);
        error.Message.ShouldContain($"models/{name}/manifest.json");
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("""{"format":1,"name":"NAME","createdAt":"2026-01-01T00:00:00Z","totalBytes":1,"fileCount":1,"files":[{"path":"../../escape","size":1,"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}]}""")]
    [InlineData("""{"format":1,"name":"NAME","createdAt":"2026-01-01T00:00:00Z","totalBytes":1,"fileCount":1,"files":[{"path":"a.bin","size":1,"sha256":"xyz"}]}""")]
    [InlineData("""{"format":1,"name":"NAME","createdAt":"2026-01-01T00:00:00Z","totalBytes":5,"fileCount":1,"files":[{"path":"a.bin","size":1,"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}]}""")]
    [InlineData("""{"format":9,"name":"NAME","createdAt":"2026-01-01T00:00:00Z","totalBytes":0,"fileCount":0,"files":[]}""")]
    [InlineData("""{"format":1,"name":"other","createdAt":"2026-01-01T00:00:00Z","totalBytes":0,"fileCount":0,"files":[]}""")]
    public async Task A_manifest_that_is_malformed_or_reaches_outside_the_model_is_refused(string json)
    {
        var name = NewName();
        await Store.PutAsync(ModelRepository.ManifestKey(name), new MemoryStream(Encoding.UTF8.GetBytes(json.Replace("NAME", name, StringComparison.Ordinal))), "application/json", Ct);

        var error = await Should.ThrowAsync<ModelIntegrityException>(() => Repository.GetManifestAsync(name, Ct));

        error.Name.ShouldBe(name);
        error.Message.ShouldContain(ModelRepository.ManifestKey(name));
    }

    private string NewName()
    {
        var name = $"test-{Guid.NewGuid():N}";
        names.Add(name);
        return name;
    }

    [Fact]
    public async Task The_model_content_hash_of_a_folder_equals_that_of_its_pushed_manifest_and_follows_its_bytes_not_its_calibration()
    {
        var folder = ModelFolder("hashed");
        var pushed = await Repository.PushAsync(NewName(), folder, replace: false, progress: null, Ct);

        var hash = ModelContentHash.OfFolder(folder);

        hash.ShouldBe(ModelContentHash.Of(pushed.Files));
        hash.Length.ShouldBe(64);
        // A calibrated memory profile beside the model is the machine's, not the model's.
        Write(folder, ModelContentHash.MemoryProfileFile, "{}"u8.ToArray());
        ModelContentHash.OfFolder(folder).ShouldBe(hash);
        // One changed byte of a weight file is another model.
        var weights = Path.Combine(folder, "unet", "weights.pb");
        var bytes = File.ReadAllBytes(weights);
        bytes[0] ^= 1;
        File.WriteAllBytes(weights, bytes);
        ModelContentHash.OfFolder(folder).ShouldNotBe(hash);
    }

    /// <summary>A model-shaped folder with random bytes, plus hidden entries that must not be pushed.</summary>
    private string ModelFolder(string folderName, int largeFileSize = 300_000)
    {
        var root = Path.Combine(scratch, folderName);
        if (Directory.Exists(root))
        {
            return root;
        }

        Write(root, "model_index.json", """{"_class_name": "OnnxStableDiffusionPipeline"}"""u8.ToArray());
        Write(root, "unet/model.onnx", TestData.Bytes(largeFileSize, seed: 7));
        Write(root, "unet/weights.pb", TestData.Bytes(70_000, seed: 8));
        Write(root, "text_encoder/model.onnx", TestData.Bytes(20_000, seed: 9));
        Write(root, "tokenizer/vocab.json", """{"a": 0}"""u8.ToArray());
        Write(root, "empty.txt", []);
        Write(root, ".DS_Store", [1, 2, 3]);
        Write(root, ".git/config", [4, 5]);
        return root;
    }

    private static void Write(string root, string path, byte[] bytes)
    {
        var full = Path.Combine(root, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, bytes);
    }

    private static Dictionary<string, (long Size, string Sha256)> ExpectedFiles(string root) =>
        new[] { "model_index.json", "unet/model.onnx", "unet/weights.pb", "text_encoder/model.onnx", "tokenizer/vocab.json", "empty.txt" }
            .ToDictionary(p => p, p =>
            {
                var bytes = File.ReadAllBytes(Path.Combine(root, p));
                return ((long)bytes.Length, Sha256(bytes));
            });

    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Cancels the push as soon as its first file is reported uploaded (reports arrive on the push's own thread).</summary>
    private sealed class StopAfterFirstFile(CancellationTokenSource stop, List<string> uploaded) : IProgress<ModelFileTransferred>
    {
        public void Report(ModelFileTransferred value)
        {
            uploaded.Add(value.File.Path);
            stop.Cancel();
        }
    }
}

/// <summary>The model repository on a local folder, as the embedded farm keeps it.</summary>
public sealed class LocalFolderModelRepositoryTests : ModelRepositoryBehaviour
{
    private readonly string root = Directory.CreateTempSubdirectory("renderfarm-model-store-").FullName;

    public LocalFolderModelRepositoryTests()
    {
        Store = new LocalFolderArtifactStore(root);
    }

    protected override IArtifactStore Store { get; }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(root, recursive: true);
    }
}

/// <summary>The model repository on the real S3 (Swift + s3api); the large file goes up in parts.</summary>
public sealed class S3ModelRepositoryTests : ModelRepositoryBehaviour
{
    private readonly S3ArtifactStore store = new(LocalServices.S3Options());

    protected override IArtifactStore Store => store;

    protected override int LargeFileSize => 6 * 1024 * 1024 + 123;

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        store.Dispose();
    }
}
