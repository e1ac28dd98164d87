#!/usr/bin/env bash
# Objects written to the artifact store per 1,000 images, files output against WebDataset output, on the embedded
# farm (renderfarm serve: SQLite, in-memory bus, local-folder store, in-process workers rendering the tiny model).
# Counts come from the farm's own metric renderfarm_storage_request_duration_seconds_count{operation="put"} (every
# store write of the coordinator and of the workers in the process), read before and after each job. Then each job is
# exported (`renderfarm export`, files for the files job and webdataset for the other, --parallel 8, every image's
# SHA-256 checked) into an empty folder, timed: export images/s from the farm's store over HTTP on this machine.
#   bench/webdataset/store-writes.sh [ITEMS=1000] [SHARD_SIZE=1000] [WORKERS=2]
# Build first: dotnet build src/RenderFarm.Cli -c Release
set -euo pipefail
ITEMS=${1:-1000}
SHARD=${2:-1000}
WORKERS=${3:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLI="dotnet $ROOT/src/RenderFarm.Cli/bin/Release/net10.0/renderfarm.dll"
DATA=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
FARM=http://127.0.0.1:$PORT
$CLI serve --urls "$FARM" --data "$DATA" --workers "$WORKERS" --preview-interval 0 >"$DATA/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 120); do curl -sf "$FARM/alive" >/dev/null && break; sleep 1; done

puts() {
  curl -sf "$FARM/metrics" | awk '/^renderfarm_storage_request_duration_seconds_count\{/ && /operation="put"/ { n += $NF } END { printf "%d\n", n }'
}

run() {
  local output=$1 before after id start end
  before=$(puts)
  start=$(date +%s.%N)
  id=$($CLI submit "a lighthouse at dusk" --width 64 --height 64 --steps 1 --count "$ITEMS" --seed 1 $output --farm "$FARM" --wait 2>/dev/null)
  if [[ "$output" == *webdataset* ]]; then
    until curl -sf "$FARM/v1/jobs/$id/shards" | grep -q '"complete":true'; do sleep 0.5; done
  fi
  end=$(date +%s.%N)
  after=$(puts)
  local format=files; [[ "$output" == *webdataset* ]] && format=webdataset
  local export_start export_end
  export_start=$(date +%s.%N)
  $CLI export "$id" -o "$DATA/export-$format" --format "$format" --parallel 8 --farm "$FARM" >/dev/null
  export_end=$(date +%s.%N)
  echo "| ${output:-files} | $ITEMS | $((after - before)) | $(awk -v w=$((after - before)) -v n="$ITEMS" 'BEGIN { printf "%.1f", w * 1000 / n }') | $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }') | $format | $(awk -v s="$export_start" -v e="$export_end" 'BEGIN { printf "%.1f", e - s }') | $(awk -v s="$export_start" -v e="$export_end" -v n="$ITEMS" 'BEGIN { printf "%.0f", n / (e - s) }') | $(cut -d' ' -f1-3 /proc/loadavg) |"
}

echo "| output | images | store writes | writes per 1,000 images | seconds | export format | export seconds | export images/s | load 1/5/15 min |"
echo "|---|---|---|---|---|---|---|---|---|"
run ""
run "--output-format webdataset --shard-size $SHARD"
