using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace RenderFarm.Coordinator.Persistence.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class DispatchWindow : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_outbox_job_id_id",
                table: "outbox",
                columns: new[] { "job_id", "id" });

            migrationBuilder.CreateIndex(
                name: "IX_items_state_assigned_at",
                table: "items",
                columns: new[] { "state", "assigned_at" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_outbox_job_id_id",
                table: "outbox");

            migrationBuilder.DropIndex(
                name: "IX_items_state_assigned_at",
                table: "items");
        }
    }
}
