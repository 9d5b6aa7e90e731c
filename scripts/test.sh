#!/usr/bin/env bash
# The whole test suite: install what is missing; build and run every test (Release); the same
# suite under AddressSanitizer + UndefinedBehaviorSanitizer; and each libFuzzer target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== release build and tests"
scripts/build.sh build
ctest --test-dir build --output-on-failure --no-tests=error -j "$(nproc)"

echo "== ASan + UBSan build and tests"
BUILD_TYPE=Debug scripts/build.sh build-asan -DNEUTRINO_SANITIZE=ON -DNEUTRINO_BUILD_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure --no-tests=error -j "$(nproc)"

echo "== fuzzers (${FUZZ_SECONDS:=30} s each)"
CXX=clang++-14 BUILD_TYPE=Debug scripts/build.sh build-fuzz -DNEUTRINO_BUILD_FUZZERS=ON -DNEUTRINO_BUILD_TESTS=OFF -DNEUTRINO_BUILD_BENCH=OFF
for fuzzer in build-fuzz/bin/fuzz_*; do
  corpus="build-fuzz/corpus/$(basename "$fuzzer")"
  mkdir -p "$corpus"
  "$fuzzer" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 "$corpus" "fuzz/corpus/$(basename "$fuzzer")" > "build-fuzz/$(basename "$fuzzer").log" 2>&1 \
    || { tail -50 "build-fuzz/$(basename "$fuzzer").log"; echo "FAILED: $fuzzer"; exit 1; }
  echo "$(basename "$fuzzer"): no findings in $FUZZ_SECONDS s"
done
