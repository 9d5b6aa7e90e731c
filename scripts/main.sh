#!/usr/bin/env bash
# The main job: install what is missing, build, train the Fashion-MNIST CNN from its config
# (saving build/fashion_mnist_cnn.safetensors), then evaluate the saved file on the test split.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build -DNEUTRINO_BUILD_TESTS=OFF
build/bin/neutrino train configs/fashion_mnist_cnn.yaml -o build/fashion_mnist_cnn.safetensors --verbose 2
build/bin/neutrino eval build/fashion_mnist_cnn.safetensors --data fashion_mnist:test --json
