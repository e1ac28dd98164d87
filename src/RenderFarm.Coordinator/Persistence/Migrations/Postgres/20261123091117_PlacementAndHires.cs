using System;
using System.Collections.Generic;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace RenderFarm.Coordinator.Persistence.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class PlacementAndHires : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<List<string>>(
                name: "installed_models",
                table: "workers",
                type: "text[]",
                defaultValueSql: "'{}'",
                nullable: false);

            migrationBuilder.AddColumn<long>(
                name: "max_pixels",
                table: "workers",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<string>(
                name: "render_queue",
                table: "workers",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "resident_max_pixels",
                table: "workers",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<DateTime>(
                name: "assigned_at",
                table: "items",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "assigned_worker_id",
                table: "items",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "hires",
                table: "items",
                type: "text",
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
