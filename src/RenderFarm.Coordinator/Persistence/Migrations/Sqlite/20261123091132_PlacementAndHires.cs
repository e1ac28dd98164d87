using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace RenderFarm.Coordinator.Persistence.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class PlacementAndHires : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "installed_models",
                table: "workers",
                type: "TEXT",
                nullable: false,
                defaultValue: "[]");

            migrationBuilder.AddColumn<long>(
                name: "max_pixels",
                table: "workers",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<string>(
                name: "render_queue",
                table: "workers",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "resident_max_pixels",
                table: "workers",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<DateTime>(
                name: "assigned_at",
                table: "items",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "assigned_worker_id",
                table: "items",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "hires",
                table: "items",
                type: "TEXT",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_items_state_assigned_worker_id",
                table: "items",
                columns: new[] { "state", "assigned_worker_id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_items_state_assigned_worker_id",
                table: "items");

            migrationBuilder.DropColumn(
                name: "installed_models",
                table: "workers");

            migrationBuilder.DropColumn(
                name: "max_pixels",
                table: "workers");

            migrationBuilder.DropColumn(
                name: "render_queue",
                table: "workers");

            migrationBuilder.DropColumn(
                name: "resident_max_pixels",
                table: "workers");

            migrationBuilder.DropColumn(
                name: "assigned_at",
                table: "items");

            migrationBuilder.DropColumn(
                name: "assigned_worker_id",
                table: "items");

            migrationBuilder.DropColumn(
                name: "hires",
                table: "items");
        }
    }
}
