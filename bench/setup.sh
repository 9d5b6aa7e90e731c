#!/usr/bin/env bash
# Installs the benchmark's peers: PyTorch (Debian), OpenBLAS, and ONNX Runtime (npm, on the
# machine's Node.js; Debian's nodejs/npm only when no node is installed).
set -euo pipefail
cd "$(dirname "$0")"
packages=(python3-torch python3-numpy libopenblas-dev bc)
command -v node > /dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The install script of onnxruntime-node only fetches GPU add-ons; the CPU library is inside.
[ -d node_modules/onnxruntime-node ] || ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent
