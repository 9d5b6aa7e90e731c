// libFuzzer target for the safetensors reader. Any input must either be refused with a
// neutrino::Error or be accepted; an accepted file must then survive the writer and read back
// unchanged. A crash, a sanitizer report, any other exception or a changed round trip is a bug.
//
//   clang++-14 -std=c++20 -fsanitize=fuzzer,address,undefined -Isrc src/neutrino/core/error.cpp \
//       src/neutrino/io/safetensors.cpp fuzz/fuzz_safetensors.cpp -lfmt -o fuzz_safetensors
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/io/safetensors.h"

namespace {

bool same(const neutrino::io::SafetensorsFile& a, const neutrino::io::SafetensorsFile& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (const auto& [name, t] : a.tensors) {
    const auto it = b.tensors.find(name);
    if (it == b.tensors.end() || t.dtype != it->second.dtype || t.shape != it->second.shape ||
        t.data != it->second.data) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  neutrino::io::SafetensorsFile file;
  try {
    file = neutrino::io::read_safetensors_bytes(data, size, "fuzz.safetensors");
  } catch (const neutrino::Error&) {
    return 0;  // refusing the input is the expected outcome for most fuzzed files
  }
  // Outside the try: the writer and the second read must not fail on what the reader accepted.
  const std::vector<uint8_t> bytes = neutrino::io::write_safetensors_bytes(file);
  const neutrino::io::SafetensorsFile again =
      neutrino::io::read_safetensors_bytes(bytes.data(), bytes.size(), "fuzz round trip");
  if (!same(file, again)) std::abort();
  return 0;
}
