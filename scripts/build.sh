#!/usr/bin/env bash
# Configures and builds one build tree: scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
shift || true
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} "$@" > "$build_dir.cmake.log" 2>&1 \
  || { cat "$build_dir.cmake.log"; exit 1; }
cmake --build "$build_dir" -j "$(nproc)"
