using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace RenderFarm.Coordinator.Persistence.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Initial : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "jobs",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "TEXT", nullable: false),
                    state = table.Column<int>(type: "INTEGER", nullable: false),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    updated_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    finished_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    model = table.Column<string>(type: "TEXT", nullable: false),
                    width = table.Column<int>(type: "INTEGER", nullable: false),
                    height = table.Column<int>(type: "INTEGER", nullable: false),
                    mode = table.Column<string>(type: "TEXT", nullable: false),
                    priority = table.Column<int>(type: "INTEGER", nullable: false),
                    base_seed = table.Column<long>(type: "INTEGER", nullable: false),
                    request = table.Column<string>(type: "TEXT", nullable: false),
                    cancel_reason = table.Column<string>(type: "TEXT", nullable: true),
                    total_items = table.Column<long>(type: "INTEGER", nullable: false),
                    queued_items = table.Column<long>(type: "INTEGER", nullable: false),
                    running_items = table.Column<long>(type: "INTEGER", nullable: false),
                    retrying_items = table.Column<long>(type: "INTEGER", nullable: false),
                    succeeded_items = table.Column<long>(type: "INTEGER", nullable: false),
                    failed_items = table.Column<long>(type: "INTEGER", nullable: false),
                    canceled_items = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_jobs", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "outbox",
                columns: table => new
                {
                    id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    kind = table.Column<int>(type: "INTEGER", nullable: false),
                    job_id = table.Column<Guid>(type: "TEXT", nullable: false),
                    first_index = table.Column<long>(type: "INTEGER", nullable: false),
                    item_count = table.Column<int>(type: "INTEGER", nullable: false),
                    payload = table.Column<string>(type: "TEXT", nullable: true),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    available_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_outbox", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "workers",
                columns: table => new
                {
                    id = table.Column<string>(type: "TEXT", nullable: false),
                    host = table.Column<string>(type: "TEXT", nullable: false),
                    device_name = table.Column<string>(type: "TEXT", nullable: false),
                    memory_total_bytes = table.Column<long>(type: "INTEGER", nullable: false),
                    memory_free_bytes = table.Column<long>(type: "INTEGER", nullable: false),
                    memory_budget_bytes = table.Column<long>(type: "INTEGER", nullable: false),
                    execution_providers = table.Column<string>(type: "TEXT", nullable: false),
                    loaded_models = table.Column<string>(type: "TEXT", nullable: false),
                    current_item_ids = table.Column<string>(type: "TEXT", nullable: false),
                    state = table.Column<int>(type: "INTEGER", nullable: false),
                    strategy = table.Column<string>(type: "TEXT", nullable: false),
                    pool = table.Column<string>(type: "TEXT", nullable: false),
                    first_seen_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    last_heartbeat_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_workers", x => x.id);
                });

            migrationBuilder.CreateTable(
                name: "idempotency_keys",
                columns: table => new
                {
                    key = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    job_id = table.Column<Guid>(type: "TEXT", nullable: false),
                    request_hash = table.Column<string>(type: "TEXT", nullable: false),
                    created_at = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_idempotency_keys", x => x.key);
                    table.ForeignKey(
                        name: "FK_idempotency_keys_jobs_job_id",
                        column: x => x.job_id,
                        principalTable: "jobs",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "items",
                columns: table => new
                {
                    id = table.Column<Guid>(type: "TEXT", nullable: false),
                    job_id = table.Column<Guid>(type: "TEXT", nullable: false),
                    index = table.Column<long>(type: "INTEGER", nullable: false),
                    seed = table.Column<long>(type: "INTEGER", nullable: false),
                    prompt = table.Column<string>(type: "TEXT", nullable: false),
                    negative_prompt = table.Column<string>(type: "TEXT", nullable: false),
                    width = table.Column<int>(type: "INTEGER", nullable: false),
                    height = table.Column<int>(type: "INTEGER", nullable: false),
                    steps = table.Column<int>(type: "INTEGER", nullable: false),
                    guidance_scale = table.Column<double>(type: "REAL", nullable: false),
                    sampler = table.Column<string>(type: "TEXT", nullable: false),
                    model = table.Column<string>(type: "TEXT", nullable: false),
                    mode = table.Column<string>(type: "TEXT", nullable: false),
                    strength = table.Column<double>(type: "REAL", nullable: true),
                    init_image_key = table.Column<string>(type: "TEXT", nullable: true),
                    mask_key = table.Column<string>(type: "TEXT", nullable: true),
                    state = table.Column<int>(type: "INTEGER", nullable: false),
                    attempt = table.Column<int>(type: "INTEGER", nullable: false),
                    worker_id = table.Column<string>(type: "TEXT", nullable: true),
                    started_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    heartbeat_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    retry_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    finished_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    artifact_key = table.Column<string>(type: "TEXT", nullable: true),
                    error = table.Column<string>(type: "TEXT", nullable: true),
                    steps_done = table.Column<int>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_items", x => x.id);
                    table.ForeignKey(
                        name: "FK_items_jobs_job_id",
                        column: x => x.job_id,
                        principalTable: "jobs",
                        principalColumn: "id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_idempotency_keys_job_id",
                table: "idempotency_keys",
                column: "job_id");

            migrationBuilder.CreateIndex(
                name: "IX_items_job_id_index",
                table: "items",
                columns: new[] { "job_id", "index" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_items_state_heartbeat_at",
                table: "items",
                columns: new[] { "state", "heartbeat_at" });

            migrationBuilder.CreateIndex(
                name: "IX_items_state_retry_at",
                table: "items",
                columns: new[] { "state", "retry_at" });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_created_at",
                table: "jobs",
                column: "created_at");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_state_created_at",
                table: "jobs",
                columns: new[] { "state", "created_at" });

            migrationBuilder.CreateIndex(
                name: "IX_outbox_available_at",
                table: "outbox",
                column: "available_at");

            migrationBuilder.CreateIndex(
                name: "IX_workers_last_heartbeat_at",
                table: "workers",
                column: "last_heartbeat_at");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "idempotency_keys");

            migrationBuilder.DropTable(
                name: "items");

            migrationBuilder.DropTable(
                name: "outbox");

            migrationBuilder.DropTable(
                name: "workers");

            migrationBuilder.DropTable(
                name: "jobs");
        }
    }
}
