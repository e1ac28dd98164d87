using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace RenderFarm.Coordinator.Persistence.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class WebDatasetShards : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTime>(
                name: "dataset_published_at",
                table: "jobs",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "shard_size",
                table: "jobs",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "render_seconds",
                table: "items",
                type: "REAL",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "dataset_shards",
                columns: table => new
                {
                    job_id = table.Column<Guid>(type: "TEXT", nullable: false),
                    shard = table.Column<int>(type: "INTEGER", nullable: false),
                    count = table.Column<int>(type: "INTEGER", nullable: false),
                    successes = table.Column<int>(type: "INTEGER", nullable: false),
                    failures = table.Column<int>(type: "INTEGER", nullable: false),
                    bytes = table.Column<long>(type: "INTEGER", nullable: false),
                    sha256 = table.Column<string>(type: "TEXT", maxLength: 64, nullable: false),
                    started_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    finished_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    published_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_dataset_shards", x => new { x.job_id, x.shard });
                    table.ForeignKey(
                        name: "FK_dataset_shards_jobs_job_id",
                        column: x => x.job_id,
                        principalTable: "jobs",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "dataset_shards");

            migrationBuilder.DropColumn(
                name: "dataset_published_at",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "shard_size",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "render_seconds",
                table: "items");
        }
    }
}
