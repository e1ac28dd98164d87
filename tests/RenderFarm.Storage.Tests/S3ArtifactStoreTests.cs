using Minio;
using Minio.DataModel.Args;

namespace RenderFarm.Storage.Tests;

/// <summary>The behaviour suite against the real S3 (Swift + s3api) that deploy/local/services runs.</summary>
public sealed class S3ArtifactStoreTests : ArtifactStoreBehaviour, IDisposable
{
    private readonly StorageOptions options = LocalServices.S3Options();
    private readonly S3ArtifactStore store;

    public S3ArtifactStoreTests()
    {
        store = new S3ArtifactStore(options);
    }

    protected override IArtifactStore Store => store;

    public void Dispose() => store.Dispose();

    [Fact]
    public async Task A_presigned_url_fetched_over_http_returns_the_bytes()
    {
        var bytes = TestData.Bytes(300_000, 5);
        var key = Prefix + "presigned.png";
        await store.PutAsync(key, new MemoryStream(bytes), "image/png", CancellationToken.None);

        var url = await store.GetDownloadUrlAsync(key, TimeSpan.FromMinutes(5), CancellationToken.None);

        url.ShouldNotBeNull();
        using var http = new HttpClient();
        using var response = await http.GetAsync(url);
        response.IsSuccessStatusCode.ShouldBeTrue($"GET {url} answered {(int)response.StatusCode}");
        response.Content.Headers.ContentType?.MediaType.ShouldBe("image/png");
        (await response.Content.ReadAsByteArrayAsync()).ShouldBe(bytes);
    }

    [Fact]
    public async Task A_public_endpoint_signs_urls_for_that_address_and_they_fetch_the_bytes_there()
    {
        // The same server under another name, as a compose port mapping or an ingress would give it.
        var internalEndpoint = options.Endpoint!;
        var port = internalEndpoint[(internalEndpoint.LastIndexOf(':') + 1)..];
        var publicOptions = LocalServices.S3Options();
        publicOptions.PublicEndpoint = "localhost:" + port;
        using var published = new S3ArtifactStore(publicOptions);
        var key = $"public/{Guid.NewGuid():N}.bin";
        byte[] bytes = [1, 2, 3, 5, 8, 13];
        await published.PutAsync(key, new MemoryStream(bytes), "application/octet-stream", CancellationToken.None);
        try
        {
            var url = await published.GetDownloadUrlAsync(key, TimeSpan.FromMinutes(5), CancellationToken.None);

            url.ShouldNotBeNull();
            url.Authority.ShouldBe("localhost:" + port);
            using var http = new HttpClient();
            (await http.GetByteArrayAsync(url)).ShouldBe(bytes);

            // Signed for the public name: the same URL moved to the internal address no longer verifies.
            var moved = new UriBuilder(url) { Host = internalEndpoint[..internalEndpoint.LastIndexOf(':')] }.Uri;
            moved.Host.ShouldNotBe("localhost");
            (await http.GetAsync(moved)).IsSuccessStatusCode.ShouldBeFalse();
        }
        finally
        {
            await published.DeleteAsync(key, CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_presigned_url_with_a_tampered_signature_is_refused()
    {
        var key = Prefix + "tampered.bin";
        await store.PutAsync(key, new MemoryStream([1, 2, 3]), "application/octet-stream", CancellationToken.None);
        var url = (await store.GetDownloadUrlAsync(key, TimeSpan.FromMinutes(5), CancellationToken.None))!;

        var tampered = url.ToString().Replace("X-Amz-Signature=", "X-Amz-Signature=0", StringComparison.Ordinal);
        using var http = new HttpClient();
        using var response = await http.GetAsync(new Uri(tampered));

        ((int)response.StatusCode).ShouldBe(403);
    }

    [Fact]
    public async Task A_wrong_secret_is_refused_with_an_error_naming_the_credentials()
    {
        var wrong = LocalServices.S3Options();
        wrong.SecretKey = "not-the-secret";
        using var intruder = new S3ArtifactStore(wrong);

        var error = await Should.ThrowAsync<ArtifactStoreAccessDeniedException>(
            () => intruder.PutAsync(Prefix + "intruder.bin", new MemoryStream([1]), "application/octet-stream", CancellationToken.None));

        error.Message.ShouldContain("refused the credentials");
        error.Message.ShouldContain(wrong.AccessKey!);
        error.Message.ShouldContain(options.Endpoint!);
        (await store.ExistsAsync(Prefix + "intruder.bin", CancellationToken.None)).ShouldBeFalse();
    }

    [Fact]
    public async Task A_missing_bucket_is_created_at_first_use()
    {
        var bucketOptions = LocalServices.S3Options();
        bucketOptions.Bucket = $"rf-test-{Guid.NewGuid():N}";
        using var client = RawClient(bucketOptions);
        try
        {
            using (var fresh = new S3ArtifactStore(bucketOptions))
            {
                await fresh.PutAsync("first.bin", new MemoryStream([42]), "application/octet-stream", CancellationToken.None);
                (await fresh.ExistsAsync("first.bin", CancellationToken.None)).ShouldBeTrue();
                await fresh.DeleteAsync("first.bin", CancellationToken.None);
            }

            (await client.BucketExistsAsync(new BucketExistsArgs().WithBucket(bucketOptions.Bucket))).ShouldBeTrue();
        }
        finally
        {
            await client.RemoveBucketAsync(new RemoveBucketArgs().WithBucket(bucketOptions.Bucket));
        }
    }

    [Fact]
    public async Task Stores_racing_to_create_a_missing_bucket_all_write()
    {
        // Two workers' first uploads on a fresh farm: both saw no bucket, one created it, the other's create was
        // refused as "already owned by you", and that upload failed and spent an attempt of its item.
        for (var round = 0; round < 3; round++)
        {
            var bucketOptions = LocalServices.S3Options();
            bucketOptions.Bucket = $"rf-test-{Guid.NewGuid():N}";
            using var client = RawClient(bucketOptions);
            var stores = Enumerable.Range(0, 8).Select(_ => new S3ArtifactStore(bucketOptions)).ToList();
            try
            {
                using var start = new SemaphoreSlim(0);
                var writes = stores.Select((s, i) => Task.Run(async () =>
                {
                    await start.WaitAsync();
                    await s.PutAsync($"racer-{i}.bin", new MemoryStream([(byte)i]), "application/octet-stream", CancellationToken.None);
                })).ToList();
                start.Release(stores.Count);
                await Task.WhenAll(writes);

                for (var i = 0; i < stores.Count; i++)
                {
                    (await stores[0].ExistsAsync($"racer-{i}.bin", CancellationToken.None)).ShouldBeTrue();
                    await stores[0].DeleteAsync($"racer-{i}.bin", CancellationToken.None);
                }
            }
            finally
            {
                stores.ForEach(s => s.Dispose());
                for (var i = 0; i < stores.Count; i++)
                {
                    await client.RemoveObjectAsync(new RemoveObjectArgs().WithBucket(bucketOptions.Bucket).WithObject($"racer-{i}.bin"));
                }

                await client.RemoveBucketAsync(new RemoveBucketArgs().WithBucket(bucketOptions.Bucket));
            }
        }
    }

    [Fact]
    public async Task A_large_object_of_unknown_length_is_uploaded_in_parts()
    {
        var key = Prefix + "parts.bin";
        var bytes = TestData.Bytes(12 * 1024 * 1024, 6);

        await store.PutAsync(key, new UnknownLengthStream(new MemoryStream(bytes)), "application/octet-stream", CancellationToken.None);

        using var client = RawClient(options);
        var stat = await client.StatObjectAsync(new StatObjectArgs().WithBucket(options.Bucket).WithObject(key));
        // A multipart object's ETag is "<md5 of the part md5s>-<part count>"; a single PUT's is a plain md5. The SDK
        // switches to multipart from 5 MiB; the part count depends on its part size (12 MiB fits one part of it).
        stat.ETag.Trim('"').ShouldMatch("^[0-9a-f]{32}-[0-9]+$");
        stat.Size.ShouldBe(bytes.Length);
    }

    [Fact]
    public async Task A_stream_opened_and_disposed_early_does_not_hang()
    {
        var key = Prefix + "early.bin";
        await store.PutAsync(key, new MemoryStream(TestData.Bytes(10 * 1024 * 1024, 7)), "application/octet-stream", CancellationToken.None);

        for (var i = 0; i < 3; i++)
        {
            await using var read = await store.OpenReadAsync(key, CancellationToken.None);
            var first = new byte[1000];
            await read.ReadExactlyAsync(first);
            first.ShouldBe(TestData.Bytes(10 * 1024 * 1024, 7)[..1000]);
        }

        (await store.ExistsAsync(key, CancellationToken.None)).ShouldBeTrue();
    }

    private static IMinioClient RawClient(StorageOptions o) => new MinioClient()
        .WithEndpoint(o.Endpoint)
        .WithCredentials(o.AccessKey, o.SecretKey)
        .WithSSL(o.Secure)
        .WithRegion(o.Region)
        .Build();
}
