namespace RenderFarm.Storage.Tests;

/// <summary>
/// What every <see cref="IArtifactStore"/> promises, run against each implementation by a subclass. Each test writes
/// under its own Guid prefix, so tests are independent of each other and of their order.
/// </summary>
public abstract class ArtifactStoreBehaviour : IAsyncLifetime
{
    private const int LargeSize = 40 * 1024 * 1024;

    protected abstract IArtifactStore Store { get; }

    /// <summary>This test's own key space.</summary>
    protected string Prefix { get; } = $"tests/{Guid.NewGuid():N}/";

    private CancellationToken Ct => CancellationToken.None;

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        var keys = new List<string>();
        await foreach (var item in Store.ListAsync(Prefix, Ct))
        {
            keys.Add(item.Key);
        }

        foreach (var key in keys)
        {
            await Store.DeleteAsync(key, Ct);
        }
    }

    [Fact]
    public async Task A_small_object_reads_back_byte_identical()
    {
        var bytes = TestData.Bytes(2048, seed: 1);
        var key = Prefix + "small.bin";

        await Store.PutAsync(key, new MemoryStream(bytes), "application/octet-stream", Ct);

        await using var read = await Store.OpenReadAsync(key, Ct);
        (await TestData.ReadAllAsync(read)).ShouldBe(bytes);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_40_MiB_object_reads_back_byte_identical_whether_or_not_its_length_is_known(bool lengthKnown)
    {
        var bytes = TestData.Bytes(LargeSize, seed: 2);
        var key = Prefix + "large.bin";
        Stream source = lengthKnown ? new MemoryStream(bytes) : new UnknownLengthStream(new MemoryStream(bytes));

        await Store.PutAsync(key, source, "application/octet-stream", Ct);

        await using var read = await Store.OpenReadAsync(key, Ct);
        var back = await TestData.ReadAllAsync(read);
        back.Length.ShouldBe(bytes.Length);
        back.AsSpan().SequenceEqual(bytes).ShouldBeTrue("the bytes read back differ from those written");
    }

    [Fact]
    public async Task An_empty_object_is_stored_and_read_back_empty()
    {
        var key = Prefix + "empty.bin";

        await Store.PutAsync(key, new UnknownLengthStream(new MemoryStream()), "application/octet-stream", Ct);

        (await Store.ExistsAsync(key, Ct)).ShouldBeTrue();
        await using var read = await Store.OpenReadAsync(key, Ct);
        (await TestData.ReadAllAsync(read)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Exists_is_true_after_a_put_and_false_after_a_delete()
    {
        var key = Prefix + "exists.txt";
        (await Store.ExistsAsync(key, Ct)).ShouldBeFalse();

        await Store.PutAsync(key, new MemoryStream([1, 2, 3]), "text/plain", Ct);
        (await Store.ExistsAsync(key, Ct)).ShouldBeTrue();

        await Store.DeleteAsync(key, Ct);
        (await Store.ExistsAsync(key, Ct)).ShouldBeFalse();
    }

    [Fact]
    public async Task Opening_a_missing_key_throws_ArtifactNotFoundException_naming_the_key()
    {
        var key = Prefix + "missing.png";

        var error = await Should.ThrowAsync<ArtifactNotFoundException>(() => Store.OpenReadAsync(key, Ct));

        error.Key.ShouldBe(key);
        error.ShouldBeAssignableTo<KeyNotFoundException>();
    }

    [Fact]
    public async Task Opening_a_deleted_key_throws_ArtifactNotFoundException()
    {
        var key = Prefix + "deleted.png";
        await Store.PutAsync(key, new MemoryStream([1]), "image/png", Ct);
        await Store.DeleteAsync(key, Ct);

        await Should.ThrowAsync<ArtifactNotFoundException>(() => Store.OpenReadAsync(key, Ct));
    }

    [Fact]
    public async Task Deleting_a_missing_key_is_not_an_error()
    {
        await Should.NotThrowAsync(() => Store.DeleteAsync(Prefix + "never-written/file.bin", Ct));
    }

    [Fact]
    public async Task List_returns_exactly_the_keys_under_the_prefix_in_key_order_with_their_sizes()
    {
        var before = DateTimeOffset.UtcNow.AddMinutes(-5);
        await Store.PutAsync(Prefix + "a/2.bin", new MemoryStream(new byte[20]), "application/octet-stream", Ct);
        await Store.PutAsync(Prefix + "a/1.bin", new MemoryStream(new byte[10]), "application/octet-stream", Ct);
        await Store.PutAsync(Prefix + "a/deeper/3.bin", new MemoryStream(new byte[30]), "application/octet-stream", Ct);
        await Store.PutAsync(Prefix + "ab/4.bin", new MemoryStream(new byte[40]), "application/octet-stream", Ct);
        await Store.PutAsync(Prefix + "b/5.bin", new MemoryStream(new byte[50]), "application/octet-stream", Ct);

        var folder = await ListAsync(Prefix + "a/");
        var stringPrefix = await ListAsync(Prefix + "a");
        var none = await ListAsync(Prefix + "nothing-here/");

        folder.Select(i => i.Key).ShouldBe([Prefix + "a/1.bin", Prefix + "a/2.bin", Prefix + "a/deeper/3.bin"]);
        folder.Select(i => i.Size).ShouldBe([10L, 20L, 30L]);
        folder.ShouldAllBe(i => i.LastModified > before && i.LastModified < DateTimeOffset.UtcNow.AddMinutes(5));
        stringPrefix.Select(i => i.Key).ShouldBe(
            [Prefix + "a/1.bin", Prefix + "a/2.bin", Prefix + "a/deeper/3.bin", Prefix + "ab/4.bin"]);
        none.ShouldBeEmpty();
    }

    [Fact]
    public async Task Image_keys_of_a_job_are_stored_and_listed_under_the_job_prefix()
    {
        var jobId = Guid.NewGuid();
        var keys = Enumerable.Range(0, 3).Select(i => ArtifactKeys.Image(jobId, i)).ToArray();
        try
        {
            foreach (var (key, i) in keys.Select((k, i) => (k, i)))
            {
                await Store.PutAsync(key, new MemoryStream(TestData.Bytes(100 + i, i)), "image/png", Ct);
            }

            var listed = await ListAsync(ArtifactKeys.JobPrefix(jobId));

            keys[2].ShouldBe($"jobs/{jobId}/000002.png");
            listed.Select(i => i.Key).ShouldBe(keys);
            await using var read = await Store.OpenReadAsync(keys[1], Ct);
            (await TestData.ReadAllAsync(read)).ShouldBe(TestData.Bytes(101, 1));
        }
        finally
        {
            foreach (var key in keys)
            {
                await Store.DeleteAsync(key, Ct);
            }
        }
    }

    [Fact]
    public async Task A_second_put_replaces_the_whole_object()
    {
        var key = Prefix + "overwrite.bin";
        await Store.PutAsync(key, new MemoryStream(TestData.Bytes(6 * 1024 * 1024, 3)), "application/octet-stream", Ct);

        var second = TestData.Bytes(1000, 4);
        await Store.PutAsync(key, new MemoryStream(second), "application/octet-stream", Ct);

        await using var read = await Store.OpenReadAsync(key, Ct);
        (await TestData.ReadAllAsync(read)).ShouldBe(second);
        (await ListAsync(key)).Single().Size.ShouldBe(second.Length);
    }

    [Fact]
    public async Task Model_file_keys_keep_their_relative_folders()
    {
        var model = $"tiny-{Guid.NewGuid():N}";
        var key = ArtifactKeys.ModelFile(model, "unet\\model.onnx");
        try
        {
            await Store.PutAsync(key, new MemoryStream([7, 7, 7]), "application/octet-stream", Ct);

            key.ShouldBe($"models/{model}/unet/model.onnx");
            (await ListAsync(ArtifactKeys.ModelPrefix(model))).Select(i => i.Key).ShouldBe([key]);
        }
        finally
        {
            await Store.DeleteAsync(key, Ct);
        }
    }

    [Theory]
    [InlineData("../outside.bin")]
    [InlineData("a/../../outside.bin")]
    [InlineData("/etc/passwd")]
    [InlineData("a//b")]
    [InlineData("a/./b")]
    [InlineData("a\\b")]
    [InlineData("folder/")]
    [InlineData("")]
    public async Task Invalid_keys_are_refused_before_anything_is_written(string key)
    {
        await Should.ThrowAsync<ArgumentException>(() => Store.PutAsync(key, new MemoryStream([1]), "text/plain", Ct));
        await Should.ThrowAsync<ArgumentException>(() => Store.OpenReadAsync(key, Ct));
        await Should.ThrowAsync<ArgumentException>(() => Store.ExistsAsync(key, Ct));
        await Should.ThrowAsync<ArgumentException>(() => Store.DeleteAsync(key, Ct));
    }

    protected async Task<List<ArtifactInfo>> ListAsync(string prefix)
    {
        var items = new List<ArtifactInfo>();
        await foreach (var item in Store.ListAsync(prefix, Ct))
        {
            items.Add(item);
        }

        return items;
    }
}
