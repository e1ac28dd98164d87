using System.Reflection;
using RenderFarm.Contracts;

namespace RenderFarm.Domain.Tests.Contracts;

public class ContractTests
{
    private static readonly Type[] MessageTypes = typeof(MessageNames).Assembly.GetExportedTypes()
        .Where(t => t.GetField("WireName", BindingFlags.Public | BindingFlags.Static) is not null)
        .ToArray();

    private static string WireNameOf(Type type) =>
        (string)type.GetField("WireName", BindingFlags.Public | BindingFlags.Static)!.GetRawConstantValue()!;

    [Fact]
    public void Wire_names_are_pinned()
    {
        // Changing any of these strands queued messages: add a v2 name instead (see MessageNames).
        MessageTypes.ToDictionary(t => t.Name, WireNameOf).ShouldBe(new Dictionary<string, string>
        {
            ["RenderWorkUnit"] = "urn:message:RenderFarm:RenderWorkUnit:v1",
            ["CancelJob"] = "urn:message:RenderFarm:CancelJob:v1",
            ["ItemStarted"] = "urn:message:RenderFarm:ItemStarted:v1",
            ["ItemsStarted"] = "urn:message:RenderFarm:ItemsStarted:v1",
            ["ItemProgressed"] = "urn:message:RenderFarm:ItemProgressed:v1",
            ["ItemPreviewed"] = "urn:message:RenderFarm:ItemPreviewed:v1",
            ["ItemRendered"] = "urn:message:RenderFarm:ItemRendered:v1",
            ["ItemsRendered"] = "urn:message:RenderFarm:ItemsRendered:v1",
            ["ItemFailed"] = "urn:message:RenderFarm:ItemFailed:v1",
            ["JobCanceled"] = "urn:message:RenderFarm:JobCanceled:v1",
            ["WorkerHeartbeat"] = "urn:message:RenderFarm:WorkerHeartbeat:v1",
        }, ignoreOrder: true);
    }

    [Fact]
    public void Wire_names_are_unique() =>
        MessageTypes.Select(WireNameOf).ShouldBeUnique();

    [Fact]
    public void Registry_lists_every_message_with_its_own_wire_name()
    {
        MessageNames.ByType.Keys.ShouldBe(MessageTypes, ignoreOrder: true);
        foreach (var (type, name) in MessageNames.ByType)
        {
            name.ShouldBe(WireNameOf(type));
        }
    }

    [Fact]
    public void Messages_are_immutable_records()
    {
        foreach (var type in MessageTypes.Append(typeof(RenderItem)))
        {
            type.IsSealed.ShouldBeTrue(type.Name);
            type.GetMethod("<Clone>$").ShouldNotBeNull($"{type.Name} is a record");
            type.GetProperties().Where(p => p.SetMethod is { } setter && !setter.ReturnParameter.GetRequiredCustomModifiers().Contains(typeof(System.Runtime.CompilerServices.IsExternalInit)))
                .ShouldBeEmpty($"{type.Name} has mutable properties");
        }
    }

    [Fact]
    public void Required_data_is_not_nullable()
    {
        var context = new NullabilityInfoContext();
        // Later additions are optional on the wire (older senders leave them out) as well as by meaning.
        string[] optional = ["Reason", "PreviewKey", "Strength", "InitImageKey", "MaskKey", "Hires", "InstalledModels", "RenderQueue", "DispatchedAt", "Sha256", "StoreUnreachableSince", "ModelHash", "Safety", "Watermark", "Pack"];
        foreach (var type in MessageTypes.Append(typeof(RenderItem)))
        {
            foreach (var property in type.GetProperties())
            {
                var nullable = context.Create(property).ReadState == NullabilityState.Nullable;
                nullable.ShouldBe(optional.Contains(property.Name) && !(type == typeof(ItemFailed) && property.Name == "Reason"), $"{type.Name}.{property.Name}");
            }
        }
    }

    [Fact]
    public void Contracts_reference_no_other_assembly_than_the_runtime() =>
        typeof(MessageNames).Assembly.GetReferencedAssemblies().Select(a => a.Name)
            .ShouldAllBe(n => n == "System.Runtime" || n == "netstandard" || n == "System.Collections");

    [Fact]
    public void Worker_state_values_are_pinned() =>
        Enum.GetValues<WorkerState>().ToDictionary(s => s.ToString(), s => (int)s).ShouldBe(new Dictionary<string, int>
        {
            ["Starting"] = 0, ["Idle"] = 1, ["Busy"] = 2, ["Draining"] = 3,
        });

    [Fact]
    public void Placement_property_names_are_pinned_and_unique()
    {
        var names = typeof(PlacementProperties).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.Name != nameof(PlacementProperties.DefaultPool))
            .ToDictionary(f => f.Name, f => (string)f.GetRawConstantValue()!);

        names.ShouldBe(new Dictionary<string, string>
        {
            ["MemoryBudgetBytes"] = "memoryBudgetBytes",
            ["MemoryFreeBytes"] = "memoryFreeBytes",
            ["MemoryTotalBytes"] = "memoryTotalBytes",
            ["LoadedModels"] = "loadedModels",
            ["ExecutionProviders"] = "executionProviders",
            ["Pool"] = "pool",
        }, ignoreOrder: true);
        names.Values.ShouldBeUnique();
    }

    [Fact]
    public void Render_modes_match_the_json_values() =>
        RenderModes.All.ShouldBe(["txt2img", "img2img", "inpaint", "hires", "upscale"]);
}
