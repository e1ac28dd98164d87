using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using Minio;
using Minio.DataModel.Args;
using Minio.Exceptions;

namespace RenderFarm.Storage;

/// <summary>
/// Artifacts in an S3 bucket through the Minio SDK: locally OpenStack Swift's s3api (deploy/local/services),
/// any S3 service in production. The bucket is created at first use when missing.
/// </summary>
/// <remarks>
/// Ranged reads are deliberately absent: against Swift, <c>GetObjectArgs.WithOffsetAndLength</c> throws
/// <c>PartialContentException</c> (the SDK does not accept the 206 answer). Where a range is needed, fetch
/// <see cref="GetDownloadUrlAsync"/>'s presigned URL with an HTTP Range header instead.
/// </remarks>
public sealed class S3ArtifactStore : IArtifactStore, IDisposable
{
    // Larger puts go through a temporary file, smaller ones through memory, when the stream cannot tell its length.
    private const int MemorySpoolLimit = 8 * 1024 * 1024;
    private static readonly TimeSpan MaxUrlLifetime = TimeSpan.FromDays(7);

    private readonly IMinioClient client;

    // Signs download URLs for the address clients use (StorageOptions.PublicEndpoint); the same client when unset.
    private readonly IMinioClient presigner;
    private readonly string bucket;
    private readonly string endpoint;
    private readonly string accessKey;
    private readonly SemaphoreSlim bucketGate = new(1, 1);
    private volatile bool bucketReady;

    public S3ArtifactStore(StorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Endpoint, "options.Endpoint");
        ArgumentException.ThrowIfNullOrEmpty(options.AccessKey, "options.AccessKey");
        ArgumentException.ThrowIfNullOrEmpty(options.SecretKey, "options.SecretKey");
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Bucket, "options.Bucket");

        bucket = options.Bucket;
        endpoint = options.Endpoint;
        accessKey = options.AccessKey;
        // An IP or plain host endpoint makes the SDK use path-style requests (bucket in the path), which Swift's
        // s3api needs: it serves no virtual-host buckets here. A fixed region spares a GetBucketLocation call.
        client = new MinioClient()
            .WithEndpoint(options.Endpoint)
            .WithCredentials(options.AccessKey, options.SecretKey)
            .WithSSL(options.Secure)
            .WithRegion(options.Region)
            .Build();
        presigner = string.IsNullOrWhiteSpace(options.PublicEndpoint)
            ? client
            : new MinioClient()
                .WithEndpoint(options.PublicEndpoint)
                .WithCredentials(options.AccessKey, options.SecretKey)
                .WithSSL(options.PublicSecure ?? options.Secure)
                .WithRegion(options.Region)
                .Build();
    }

    /// <summary>The bucket this store writes to.</summary>
    public string Bucket => bucket;

    public async Task PutAsync(string key, Stream content, string contentType, CancellationToken cancellationToken)
    {
        ArtifactKeyRules.ValidateKey(key);
        ArgumentNullException.ThrowIfNull(content);
        await EnsureBucketAsync(cancellationToken).ConfigureAwait(false);

        long length;
        try
        {
            length = content.CanSeek ? content.Length - content.Position : -1;
        }
        catch (NotSupportedException)
        {
            length = -1;
        }

        if (length >= 0)
        {
            await PutKnownLengthAsync(key, content, length, contentType, cancellationToken).ConfigureAwait(false);
            return;
        }

        // The SDK's unknown-length upload (size -1) sizes its parts for a 5 TiB object and allocates each part as one
        // array (hundreds of MiB to GiB), so an unknown length is spooled first and sent with its real length: the SDK
        // then sends objects of 5 MiB and more as a multipart upload with parts sized for that length.
        var spool = await SpoolAsync(content, cancellationToken).ConfigureAwait(false);
        await using (spool.ConfigureAwait(false))
        {
            await PutKnownLengthAsync(key, spool, spool.Length, contentType, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken)
    {
        ArtifactKeyRules.ValidateKey(key);
        await EnsureBucketAsync(cancellationToken).ConfigureAwait(false);

        // The SDK hands the body to a callback and closes it when the callback returns; a pipe turns that into a stream
        // the caller owns. The download runs until the body is copied or the caller disposes the stream.
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024));
        var opened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var args = new GetObjectArgs()
            .WithBucket(bucket)
            .WithObject(key)
            .WithCallbackStream(async (body, token) =>
            {
                opened.TrySetResult();
                await body.CopyToAsync(pipe.Writer, token).ConfigureAwait(false);
            });

        _ = Task.Run(async () =>
        {
            try
            {
                await client.GetObjectAsync(args, CancellationToken.None).ConfigureAwait(false);
                await pipe.Writer.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                var translated = Translate(ex, key);
                if (!opened.TrySetException(translated))
                {
                    // The caller already holds the stream: the failure reaches it through its next read.
                    await pipe.Writer.CompleteAsync(translated).ConfigureAwait(false);
                }
            }
        }, CancellationToken.None);

        try
        {
            await opened.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await pipe.Reader.CompleteAsync().ConfigureAwait(false);
            throw;
        }

        return pipe.Reader.AsStream();
    }

    public async Task<bool> ExistsAsync(string key, CancellationToken cancellationToken)
    {
        ArtifactKeyRules.ValidateKey(key);
        await EnsureBucketAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await client.StatObjectAsync(new StatObjectArgs().WithBucket(bucket).WithObject(key), cancellationToken)
                .ConfigureAwait(false);
            return true;
        }
        catch (ObjectNotFoundException)
        {
            return false;
        }
        catch (Exception ex) when (IsSdkFailure(ex))
        {
            throw Translate(ex, key);
        }
    }

    public async Task<Uri?> GetDownloadUrlAsync(string key, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        ArtifactKeyRules.ValidateKey(key);
        ArgumentOutOfRangeException.ThrowIfLessThan(lifetime, TimeSpan.FromSeconds(1));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(lifetime, MaxUrlLifetime);
        await EnsureBucketAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Signed locally, no request: the SDK's presign takes no cancellation token.
            var url = await presigner.PresignedGetObjectAsync(new PresignedGetObjectArgs()
                    .WithBucket(bucket)
                    .WithObject(key)
                    .WithExpiry((int)Math.Ceiling(lifetime.TotalSeconds)))
                .ConfigureAwait(false);
            return new Uri(url);
        }
        catch (Exception ex) when (IsSdkFailure(ex))
        {
            throw Translate(ex, key);
        }
    }

    public async IAsyncEnumerable<ArtifactInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArtifactKeyRules.ValidatePrefix(prefix);
        await EnsureBucketAsync(cancellationToken).ConfigureAwait(false);
        var args = new ListObjectsArgs().WithBucket(bucket).WithPrefix(prefix).WithRecursive(true);
        var items = client.ListObjectsEnumAsync(args, cancellationToken).GetAsyncEnumerator(cancellationToken);
        await using (items.ConfigureAwait(false))
        {
            while (true)
            {
                bool more;
                try
                {
                    more = await items.MoveNextAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (IsSdkFailure(ex))
                {
                    throw Translate(ex, prefix);
                }

                if (!more)
                {
                    break;
                }

                var item = items.Current;
                if (item.IsDir)
                {
                    continue;
                }

                // Parsed from the listing's ISO 8601 text: the SDK's DateTime form leaves its Kind to the parser.
                var modified = DateTimeOffset.TryParse(item.LastModified, CultureInfo.InvariantCulture,
                    DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time)
                    ? time
                    : DateTimeOffset.MinValue;
                yield return new ArtifactInfo(item.Key, (long)item.Size, modified);
            }
        }
    }

    public async Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        ArtifactKeyRules.ValidateKey(key);
        await EnsureBucketAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await client.RemoveObjectAsync(new RemoveObjectArgs().WithBucket(bucket).WithObject(key), cancellationToken)
                .ConfigureAwait(false);
        }
        catch (ObjectNotFoundException)
        {
            // S3 answers 204 for a missing key; should an implementation answer 404, it means the same.
        }
        catch (Exception ex) when (IsSdkFailure(ex))
        {
            throw Translate(ex, key);
        }
    }

    public void Dispose()
    {
        client.Dispose();
        if (!ReferenceEquals(presigner, client))
        {
            presigner.Dispose();
        }

        bucketGate.Dispose();
    }

    private async Task PutKnownLengthAsync(string key, Stream content, long length, string contentType, CancellationToken cancellationToken)
    {
        var args = new PutObjectArgs()
            .WithBucket(bucket)
            .WithObject(key)
            .WithStreamData(content)
            .WithObjectSize(length)
            .WithContentType(string.IsNullOrWhiteSpace(contentType) ? "application/octet-stream" : contentType);
        try
        {
            await client.PutObjectAsync(args, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsSdkFailure(ex))
        {
            throw Translate(ex, key);
        }
    }

    private static async Task<Stream> SpoolAsync(Stream content, CancellationToken cancellationToken)
    {
        var memory = new MemoryStream();
        var buffer = new byte[81920];
        int read;
        while ((read = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (memory.Length + read > MemorySpoolLimit)
            {
                var file = new FileStream(Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None,
                    81920, FileOptions.Asynchronous | FileOptions.DeleteOnClose);
                try
                {
                    memory.Position = 0;
                    await memory.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    await content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                    file.Position = 0;
                    return file;
                }
                catch
                {
                    await file.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
                finally
                {
                    await memory.DisposeAsync().ConfigureAwait(false);
                }
            }

            memory.Write(buffer, 0, read);
        }

        memory.Position = 0;
        return memory;
    }

    private async Task EnsureBucketAsync(CancellationToken cancellationToken)
    {
        if (bucketReady)
        {
            return;
        }

        await bucketGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (bucketReady)
            {
                return;
            }

            try
            {
                var exists = await client.BucketExistsAsync(new BucketExistsArgs().WithBucket(bucket), cancellationToken)
                    .ConfigureAwait(false);
                if (!exists)
                {
                    try
                    {
                        await client.MakeBucketAsync(new MakeBucketArgs().WithBucket(bucket), cancellationToken)
                            .ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is MinioException or ArgumentException)
                    {
                        // Another process (two workers' first uploads) created it between the check and the create.
                        // MinIO's "BucketAlreadyOwnedByYou" arrives as a MinioException, Swift's as an ArgumentException
                        // from the SDK's error parser: whether the bucket exists now decides, not the error's shape.
                        if (!await client.BucketExistsAsync(new BucketExistsArgs().WithBucket(bucket), cancellationToken).ConfigureAwait(false))
                        {
                            throw;
                        }
                    }
                }
            }
            catch (Exception ex) when (IsSdkFailure(ex))
            {
                throw Translate(ex, key: null);
            }

            // Not cached on failure: the next call tries again (the service may still be starting).
            bucketReady = true;
        }
        finally
        {
            bucketGate.Release();
        }
    }

    // AuthorizationException is the SDK's one failure that does not derive from MinioException.
    private static bool IsSdkFailure(Exception ex) => ex is MinioException or AuthorizationException or HttpRequestException;

    private Exception Translate(Exception ex, string? key)
    {
        if (!IsSdkFailure(ex))
        {
            return ex;
        }

        if (ex is HttpRequestException)
        {
            return new ArtifactStoreException($"The S3 service at {endpoint} cannot be reached: {ex.Message}", ex) { Unreachable = true };
        }

        var minio = ex as MinioException;
        var code = minio?.Response?.Code;
        if (ex is ObjectNotFoundException || code is "NoSuchKey")
        {
            return ArtifactNotFoundException.For(key ?? "(none)", ex);
        }

        if (ex is AuthorizationException or AccessDeniedException
            || code is "AccessDenied" or "SignatureDoesNotMatch" or "InvalidAccessKeyId"
            || minio?.ServerResponse?.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
        {
            return new ArtifactStoreAccessDeniedException(
                $"The S3 service at {endpoint} refused the credentials of access key '{accessKey}' for bucket '{bucket}'"
                + $"{(code is null ? string.Empty : $" ({code})")}: check Storage:AccessKey and Storage:SecretKey "
                + "(RENDERFARM_S3_ACCESS_KEY / RENDERFARM_S3_SECRET_KEY).",
                ex);
        }

        var status = minio?.ServerResponse?.StatusCode;
        return new ArtifactStoreException(
            $"S3 request to {endpoint}, bucket '{bucket}'{(key is null ? string.Empty : $", key '{key}'")} failed: {ex.Message}",
            ex)
        {
            // No answer at all (the SDK wraps connection failures too), or one that says the service is struggling.
            Unreachable = status is null || (int)status >= 500 || status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests,
        };
    }
}
