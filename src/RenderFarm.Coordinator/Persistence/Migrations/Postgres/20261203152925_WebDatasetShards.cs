using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace RenderFarm.Coordinator.Persistence.Migrations.Postgres
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
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "shard_size",
                table: "jobs",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "render_seconds",
                table: "items",
                type: "double precision",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "dataset_shards",
                columns: table => new
                {
                    job_id = table.Column<Guid>(type: "uuid", nullable: false),
                    shard = table.Column<int>(type: "integer", nullable: false),
                    count = table.Column<int>(type: "integer", nullable: false),
                    successes = table.Column<int>(type: "integer", nullable: false),
                    failures = table.Column<int>(type: "integer", nullable: false),
                    bytes = table.Column<long>(type: "bigint", nullable: false),
                    sha256 = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    started_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    finished_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    published_at = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
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
