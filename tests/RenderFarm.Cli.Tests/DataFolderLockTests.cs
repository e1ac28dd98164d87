using RenderFarm.Cli.Farm;

namespace RenderFarm.Cli.Tests;

/// <summary>One farm per data folder: a second <c>serve</c> on a folder in use stops, naming the one that has it.</summary>
public sealed class DataFolderLockTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("rf-serve-lock-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_second_serve_on_the_same_data_folder_exits_2_naming_the_running_one_and_its_address()
    {
        var data = Path.Combine(_root, "data");
        await using (var first = await EmbeddedServe.StartAsync(data, workers: 1))
        {
            var (exitCode, output, error) = await Cli.RunAsync("serve", "--urls", "http://127.0.0.1:0", "--workers", "1", "--data", data);

            exitCode.ShouldBe(2, output + error);
            error.ShouldContain($"'{data}' is in use by renderfarm serve (process {Environment.ProcessId}, listening on {first.Address.ToString().TrimEnd('/')}");
            error.ShouldContain("--data");
            output.ShouldNotContain("listening on");

            // The first one was not disturbed: it still answers from its database.
            (await first.CreateClient().ListJobsAsync()).Total.ShouldBe(0);
        }

        // Stopped, it lets go: the folder serves again.
        await using var second = await EmbeddedServe.StartAsync(data, workers: 1);
        File.Exists(Path.Combine(data, DataFolderLock.OwnerFileName)).ShouldBeTrue();
    }

    [Fact]
    public void A_lock_held_elsewhere_is_refused_until_it_is_released()
    {
        var data = Path.Combine(_root, "held");
        using (var held = DataFolderLock.TryAcquire(data, out _))
        {
            held.ShouldNotBeNull();
            DataFolderLock.TryAcquire(data, out var holder).ShouldBeNull();
            holder.ShouldBe("another renderfarm serve (still starting)");

            held.Announce(["http://127.0.0.1:5180"]);
            DataFolderLock.TryAcquire(data, out holder).ShouldBeNull();
            holder.ShouldContain("listening on http://127.0.0.1:5180");
        }

        using var again = DataFolderLock.TryAcquire(data, out _);
        again.ShouldNotBeNull();
    }
}
