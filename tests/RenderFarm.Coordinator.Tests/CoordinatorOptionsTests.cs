using RenderFarm.Coordinator.Options;

namespace RenderFarm.Coordinator.Tests;

/// <summary>Start-up validation of the ledger's batch settings: a bad value stops the host with the key named.</summary>
public sealed class CoordinatorOptionsTests
{
    [Fact]
    public void The_defaults_are_valid_and_batch_a_hundred_reports_for_at_most_20_ms()
    {
        var options = new CoordinatorOptions { Models = ["tiny-sd"] };

        new CoordinatorOptionsValidator().Validate(null, options).Succeeded.ShouldBeTrue();
        (options.LedgerBatchSize, options.LedgerBatchWait).ShouldBe((100, TimeSpan.FromMilliseconds(20)));
    }

    [Theory]
    [InlineData(0, 20, "LedgerBatchSize")]
    [InlineData(1001, 20, "LedgerBatchSize")]
    [InlineData(100, 0, "LedgerBatchWait")]
    [InlineData(100, 10_001, "LedgerBatchWait")]
    public void A_ledger_batch_setting_out_of_range_fails_naming_the_key(int size, int waitMs, string key)
    {
        var options = new CoordinatorOptions { Models = ["tiny-sd"], LedgerBatchSize = size, LedgerBatchWait = TimeSpan.FromMilliseconds(waitMs) };

        var result = new CoordinatorOptionsValidator().Validate(null, options);

        result.Failed.ShouldBeTrue();
        result.FailureMessage.ShouldContain($"Coordinator:{key}");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8 * 24 * 3600)]
    public void A_download_url_lifetime_outside_what_S3_signs_fails_naming_the_key(int seconds)
    {
        var options = new CoordinatorOptions { Models = ["tiny-sd"], DownloadUrlLifetime = TimeSpan.FromSeconds(seconds) };

        var result = new CoordinatorOptionsValidator().Validate(null, options);

        result.Failed.ShouldBeTrue();
        result.FailureMessage.ShouldContain("Coordinator:DownloadUrlLifetime");
    }
}
