#!/usr/bin/env bash
# How the coordinator's memory and time behave while it streams a job's dataset manifest (GET /v1/jobs/{id}/manifest),
# for sweeps of growing size. The coordinator runs alone with its embedded providers (SQLite, in-memory bus, local
# store) and no workers, so every item stays queued and nothing but the manifest competes for the process.
#
#   dotnet build src/RenderFarm.Coordinator -c Release && bench/manifest/run.sh [PROMPTS...]
#
# Each argument P submits a sweep of P prompts × 1000 seeds (default: 100 1000, i.e. 100,000 and 1,000,000 items),
# then reads the manifest as JSONL and as Parquet, sampling the coordinator's RSS every 0.2 s while the submission
# runs and while each manifest streams. Prints one line per step; results are in docs/benchmarks.md ("Dataset manifest").
#
# RENDERFARM_BENCH_DATABASE=postgres runs the coordinator on a fresh database of the PostgreSQL that
# deploy/local/services started (port RENDERFARM_PG_PORT, default 55432), dropped at the end, instead of SQLite.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${RENDERFARM_BENCH_PORT:-5392}"
WORK="$(mktemp -d /tmp/rf-manifest-bench.XXXXXX)"
URL="http://127.0.0.1:$PORT"
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(100 1000)

export Bus__Transport=InMemory Storage__Provider=Local Storage__LocalRoot="$WORK/artifacts" \
  Logging__LogLevel__Default=Warning Coordinator__Auth__RequireApiKeys=false
DATABASE="${RENDERFARM_BENCH_DATABASE:-sqlite}"
PG=(psql -h 127.0.0.1 -p "${RENDERFARM_PG_PORT:-55432}" -U postgres -d postgres -qAt)
PGDB="rf_manifest_bench_$$"
if [ "$DATABASE" = postgres ]; then
  "${PG[@]}" -c "CREATE DATABASE $PGDB"
  export Database__Provider=Postgres \
    ConnectionStrings__RenderFarm="Host=127.0.0.1;Port=${RENDERFARM_PG_PORT:-55432};Username=postgres;Database=$PGDB"
else
  export Database__Provider=Sqlite Database__SqlitePath="$WORK/renderfarm.db"
fi
dotnet "$REPO/src/RenderFarm.Coordinator/bin/Release/net10.0/RenderFarm.Coordinator.dll" --urls "$URL" > "$WORK/coordinator.log" 2>&1 &
PID=$!
# SIGTERM, not SIGINT: a script's background jobs ignore SIGINT. errexit holds inside the trap too, so the
# coordinator's exit status must not stop the clean-up.
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"
  [ "$DATABASE" != postgres ] || "${PG[@]}" -c "DROP DATABASE IF EXISTS $PGDB" || true' EXIT
for _ in $(seq 1 120); do curl -sf "$URL/alive" > /dev/null && break; sleep 1; done

rss() { awk '/VmRSS/{print $2}' "/proc/$PID/status"; }
# The managed heap after the last GC (KiB, all generations), from the coordinator's own runtime metrics.
heap() { curl -sf "$URL/metrics" | awk '/^dotnet_gc_last_collection_heap_size_bytes/ { n += $NF } END { printf "%d\n", n / 1024 }'; }
now() { date +%s.%N; }

# Runs the command in the background and prints the highest RSS (KiB) the coordinator reached meanwhile.
peak_while() {
  local peak=0 r
  "$@" & local child=$!
  while kill -0 "$child" 2> /dev/null; do r=$(rss); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.2; done
  wait "$child"
  echo "$peak"
}

for prompts in "${SIZES[@]}"; do
  items=$((prompts * 1000))
  python3 -c "
import json, sys
json.dump({'width': 64, 'height': 64, 'steps': 2, 'guidanceScale': 7.5, 'sampler': 'euler', 'negativePrompt': 'blurry',
           'sweep': {'prompts': [f'a test prompt number {i} with some words' for i in range($prompts)],
                     'seeds': list(range(1, 1001))}}, sys.stdout)" > "$WORK/job.json"
  t0=$(now)
  peak=$(peak_while sh -c "curl -sf -X POST -H 'Content-Type: application/json' --data @'$WORK/job.json' '$URL/v1/jobs' > '$WORK/accepted.json'")
  id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/accepted.json")
  echo "database=$DATABASE items=$items submitted_s=$(echo "$(now) - $t0" | bc) peak_rss_while_submitting_kib=$peak rss_kib=$(rss) load=$(cut -d' ' -f1-3 /proc/loadavg)"
  sleep 3
  echo "items=$items idle_rss_kib=$(rss) managed_heap_after_last_gc_kib=$(heap)"
  for format in jsonl parquet; do
    t0=$(now)
    peak=$(peak_while sh -c "curl -sf '$URL/v1/jobs/$id/manifest?format=$format' | wc -c > '$WORK/bytes'")
    echo "items=$items format=$format bytes=$(cat "$WORK/bytes") seconds=$(echo "$(now) - $t0" | bc) peak_rss_kib=$peak"
  done
done
