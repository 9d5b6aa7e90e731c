#!/usr/bin/env bash
# Runs one libFuzzer target: replays its kept corpus (fuzz/corpus/<target>/, every input, so an
# old finding that comes back fails at once), then fuzzes for SECONDS (default 120).
#   scripts/fuzz.sh build-fuzz/bin/fuzz_npy [SECONDS] [--keep]
# --keep merges the inputs that reached new coverage into the kept corpus (libFuzzer's -merge=1,
# which keeps it minimal); commit them so that CI replays them from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzzer=$1
seconds=${2:-120}
name=$(basename "$fuzzer")
kept="fuzz/corpus/$name"
grown="build-fuzz/corpus/$name"
log="build-fuzz/$name.log"
mkdir -p "$kept" "$grown"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}  # a UBSan finding fails the run
if ! "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$grown" "$kept" > "$log" 2>&1; then
  tail -50 "$log"
  echo "FAILED: $name (the input is in build-fuzz/, see $log)"
  exit 1
fi
runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
replayed=$(find "$kept" -type f | wc -l)
if [ "${3:-}" = --keep ]; then
  "$fuzzer" -merge=1 "$kept" "$grown" > "$log.merge" 2>&1
  echo "$name: kept corpus now $(find "$kept" -type f | wc -l) inputs"
fi
echo "$name: no findings in $seconds s ($replayed kept inputs replayed, $runs runs)"
