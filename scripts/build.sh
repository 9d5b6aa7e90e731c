#!/usr/bin/env bash
# Configures and builds one build tree: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# Every option is passed explicitly (defaults below, overridden by the extra args), so what a
# tree builds never depends on what an earlier command left in its CMake cache: the main job
# (tests off) and the test suite (tests on) can share build/ without changing each other's build.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache (when installed) keys on paths relative to the checkout, so clones share compiled objects.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)}
build_dir=${1:-build}
shift || true
defaults=(
  -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}"
  -DNEUTRINO_BUILD_TESTS=ON -DNEUTRINO_BUILD_BENCH=ON -DNEUTRINO_BUILD_FUZZERS=OFF
  -DNEUTRINO_SANITIZE=OFF
)
cmake -S . -B "$build_dir" "${defaults[@]}" "$@" > "$build_dir.cmake.log" 2>&1 \
  || { cat "$build_dir.cmake.log"; exit 1; }
cmake --build "$build_dir" -j "$(nproc)"
