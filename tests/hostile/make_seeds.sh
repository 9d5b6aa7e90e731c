#!/usr/bin/env bash
# Regenerates the seed files of the fuzz corpora this folder owns:
#   fuzz/corpus/fuzz_image  small PNG/BMP/JPEG files of each kind, and the hostile ones
#   fuzz/corpus/fuzz_model  small model files (an MLP and a CNN) written by bin/neutrino
# Usage: tests/hostile/make_seeds.sh [BUILD_DIR]   (BUILD_DIR has bin/neutrino; default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
images=fuzz/corpus/fuzz_image
models=fuzz/corpus/fuzz_model
python3 tests/hostile/make_image_seeds.py "$images"

# JPEGs through stb_image_write (baseline, grey and RGB), with one cut short.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/jpeg.cpp" <<'CPP'
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#include <cstdio>
#include <string>
#include <vector>
int main(int, char** argv) {
  for (int c : {1, 3}) {
    std::vector<unsigned char> px(8 * 6 * c);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(i * 29);
    std::string name = std::string(argv[1]) + (c == 1 ? "/grey8x6.jpg" : "/rgb8x6.jpg");
    stbi_write_jpg(name.c_str(), 8, 6, c, px.data(), 80);
  }
}
CPP
g++ -std=c++20 -O1 "$tmp/jpeg.cpp" -o "$tmp/jpeg"
"$tmp/jpeg" "$images"
head -c 200 "$images/rgb8x6.jpg" > "$images/truncated.jpg"

mkdir -p "$models"
python3 - "$tmp/cnn.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write(",".join(f"p{i}" for i in range(16)) + ",y\n")
    for r in range(8):
        f.write(",".join(str((r * 3 + i) % 5) for i in range(16)) + f",{r % 2}\n")
PY
cat > "$tmp/cnn.yaml" <<YAML
seed: 1
data:
  train: {csv: $tmp/cnn.csv, label: y}
  preprocess: [{rescale: 0.25}, {standardize: {}}]
model:
  input_shape: [4, 4, 1]
  layers:
    - Conv2D: {filters: 2, kernel_size: 3, padding: same, activation: relu}
    - BatchNormalization: {}
    - MaxPooling2D: {pool_size: 2}
    - Flatten: {}
    - Dropout: {rate: 0.1}
    - Dense: {units: 2, activation: softmax}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
fit: {epochs: 1, batch_size: 4, verbose: 0}
YAML
"$build/bin/neutrino" train "$tmp/cnn.yaml" -o "$models/cnn.safetensors" --checkpoint "$tmp/c.safetensors"
"$build/bin/neutrino" train configs/xor.yaml -o "$models/xor.safetensors" --epochs 1 \
  --checkpoint "$tmp/x.safetensors"
ls -l "$images" "$models"
