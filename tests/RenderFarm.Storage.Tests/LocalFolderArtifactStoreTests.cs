namespace RenderFarm.Storage.Tests;

/// <summary>The behaviour suite against a folder, plus what only a folder can get wrong.</summary>
public sealed class LocalFolderArtifactStoreTests : ArtifactStoreBehaviour, IDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "renderfarm-storage-tests", Guid.NewGuid().ToString("N"), "root");
    private readonly LocalFolderArtifactStore store;

    public LocalFolderArtifactStoreTests()
    {
        store = new LocalFolderArtifactStore(root);
    }

    protected override IArtifactStore Store => store;

    public void Dispose()
    {
        var parent = Path.GetDirectoryName(root)!;
        if (Directory.Exists(parent))
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Theory]
    [InlineData("../outside.bin")]
    [InlineData("a/../../outside.bin")]
    [InlineData("/tmp/outside.bin")]
    [InlineData(".staging/x.partial")]
    public async Task Keys_that_escape_the_root_are_refused_and_nothing_is_written_outside(string key)
    {
        await Should.ThrowAsync<ArgumentException>(() => store.PutAsync(key, new MemoryStream([1]), "text/plain", CancellationToken.None));

        File.Exists(Path.Combine(Path.GetDirectoryName(root)!, "outside.bin")).ShouldBeFalse();
        Directory.EnumerateFiles(Path.GetDirectoryName(root)!, "*", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_listing_taken_while_its_objects_are_deleted_leaves_them_out_instead_of_failing()
    {
        // Two deletes of one job race like this: one lists the job's folder while the other deletes its files. A file
        // gone between the directory read and its stat used to throw out of the listing (a 500 from DELETE).
        var keys = Enumerable.Range(0, 3000).Select(i => $"jobs/racing/{i:D5}.png").ToList();
        foreach (var key in keys)
        {
            await store.PutAsync(key, new MemoryStream([1, 2, 3]), "image/png", CancellationToken.None);
        }

        var deleting = Task.Run(async () =>
        {
            foreach (var key in keys)
            {
                await store.DeleteAsync(key, CancellationToken.None);
            }
        });
        var listings = 0;
        while (!deleting.IsCompleted)
        {
            var listed = new List<ArtifactInfo>();
            await foreach (var info in store.ListAsync("jobs/racing/", CancellationToken.None))
            {
                listed.Add(info);
            }

            listed.ShouldAllBe(i => i.Size == 3 && i.Key.StartsWith("jobs/racing/", StringComparison.Ordinal));
            listings++;
        }

        await deleting;
        listings.ShouldBeGreaterThan(0);
        (await ToListAsync(store.ListAsync("jobs/racing/", CancellationToken.None))).ShouldBeEmpty();
    }

    private static async Task<List<ArtifactInfo>> ToListAsync(IAsyncEnumerable<ArtifactInfo> items)
    {
        var list = new List<ArtifactInfo>();
        await foreach (var item in items)
        {
            list.Add(item);
        }

        return list;
    }

    [Fact]
    public async Task A_put_in_progress_is_invisible_to_readers()
    {
        var key = Prefix + "slow.png";
        var writer = new StallingStream(before: 3 * 1024 * 1024);

        var put = store.PutAsync(key, writer, "image/png", CancellationToken.None);
        await writer.Stalled.WaitAsync(TimeSpan.FromSeconds(30));

        (await store.ExistsAsync(key, CancellationToken.None)).ShouldBeFalse();
        await Should.ThrowAsync<ArtifactNotFoundException>(() => store.OpenReadAsync(key, CancellationToken.None));
        (await ListAsync(string.Empty)).ShouldBeEmpty();

        writer.Release(fail: false);
        await put;

        await using var read = await store.OpenReadAsync(key, CancellationToken.None);
        (await TestData.ReadAllAsync(read)).Length.ShouldBe(3 * 1024 * 1024);
    }

    [Fact]
    public async Task A_failed_put_leaves_the_previous_object_and_no_partial_file()
    {
        var key = Prefix + "keep.png";
        var original = TestData.Bytes(5000, 8);
        await store.PutAsync(key, new MemoryStream(original), "image/png", CancellationToken.None);
        var writer = new StallingStream(before: 1024 * 1024);

        var put = store.PutAsync(key, writer, "image/png", CancellationToken.None);
        await writer.Stalled.WaitAsync(TimeSpan.FromSeconds(30));
        writer.Release(fail: true);
        await Should.ThrowAsync<IOException>(() => put);

        await using var read = await store.OpenReadAsync(key, CancellationToken.None);
        (await TestData.ReadAllAsync(read)).ShouldBe(original);
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ShouldBe(["keep.png"]);
    }

    [Fact]
    public async Task A_reader_keeps_the_bytes_it_opened_while_a_put_replaces_them()
    {
        var key = Prefix + "swap.bin";
        var first = TestData.Bytes(2 * 1024 * 1024, 9);
        var second = TestData.Bytes(1024, 10);
        await store.PutAsync(key, new MemoryStream(first), "application/octet-stream", CancellationToken.None);

        await using var reader = await store.OpenReadAsync(key, CancellationToken.None);
        await store.PutAsync(key, new MemoryStream(second), "application/octet-stream", CancellationToken.None);

        (await TestData.ReadAllAsync(reader)).ShouldBe(first);
        await using var again = await store.OpenReadAsync(key, CancellationToken.None);
        (await TestData.ReadAllAsync(again)).ShouldBe(second);
    }

    [Fact]
    public async Task There_are_no_download_urls_for_a_folder()
    {
        await store.PutAsync(Prefix + "x.png", new MemoryStream([1]), "image/png", CancellationToken.None);

        (await store.GetDownloadUrlAsync(Prefix + "x.png", TimeSpan.FromMinutes(1), CancellationToken.None)).ShouldBeNull();
    }
}
