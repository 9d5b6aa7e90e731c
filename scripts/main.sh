#!/usr/bin/env bash
# The main job: install what is missing, build, and run the XOR example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build -DNEUTRINO_BUILD_TESTS=OFF
build/bin/xor
