using RenderFarm.Testing;

namespace RenderFarm.Coordinator.Tests.Infrastructure;

/// <summary>The PostgreSQL that <c>deploy/local/services start</c> runs: these tests need the real one.</summary>
internal static class LocalServices
{
    public static string Postgres => LocalServiceSettings.Require("RENDERFARM_POSTGRES");
}
