#!/usr/bin/env bash
# Installs the Debian packages neutrino needs that are missing (nothing when all are there).
set -euo pipefail

packages=(
  g++ cmake make ccache
  libfmt-dev nlohmann-json3-dev zlib1g-dev libdnnl-dev libyaml-cpp-dev libcli11-dev libstb-dev
  libjpeg62-turbo-dev   # JPEG decoding (libjpeg-turbo; stb stays for PNG and BMP)
  ocl-icd-opencl-dev   # oneDNN's CMake config needs the OpenCL headers; libdnnl-dev only recommends them
  dataset-fashion-mnist python3-sklearn   # built-in datasets
  fortunes fortunes-zh   # built-in text datasets (English and Chinese fortunes)
  libsentencepiece-dev sentencepiece   # subword tokenizers; spm_encode is the tests' reference for ids
  libgtest-dev libgmock-dev
  time python3   # /usr/bin/time and python3 for tests/hostile/cost_check.py (the hostile-input cost bound)
  clang-14 libclang-rt-14-dev libomp-14-dev   # libFuzzer targets (clang's OpenMP for the library)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
