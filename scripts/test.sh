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

echo "== fuzzers: the kept corpus replayed, then ${FUZZ_SECONDS:=60} s of fuzzing each, $(nproc) at a time"
CXX=clang++-14 BUILD_TYPE=Debug scripts/build.sh build-fuzz -DNEUTRINO_BUILD_FUZZERS=ON -DNEUTRINO_BUILD_TESTS=OFF -DNEUTRINO_BUILD_BENCH=OFF
fuzzers=(build-fuzz/bin/fuzz_*)
[ -x "${fuzzers[0]}" ] || { echo "FAILED: no fuzz targets were built"; exit 1; }
printf '%s\n' "${fuzzers[@]}" | xargs -P "$(nproc)" -I{} scripts/fuzz.sh {} "$FUZZ_SECONDS"
