// libFuzzer target for the IDX reader (plain and gzipped). Any input must either be refused with a
// neutrino::Error or be accepted as a tensor whose size matches what the header promised; a
// crash, a sanitizer report or any other exception is a bug.
//
//   clang++-14 -std=c++20 -fsanitize=fuzzer,address,undefined -Isrc src/neutrino/data/idx.cpp \
//       fuzz/fuzz_idx.cpp build/lib/libneutrino.a -lfmt -lz -o fuzz_idx
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "neutrino/core/error.h"
#include "neutrino/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  neutrino::Tensor t;
  try {
    t = neutrino::data::read_idx_bytes(data, size, "fuzz.idx");
  } catch (const neutrino::Error&) {
    return 0;  // refusing the input is the expected outcome for most fuzzed files
  }
  // An accepted file has 1 to 8 dimensions and no more elements than its data bytes. (Not
  // is_contiguous(): Tensor reports an empty (2, 0, 3) tensor as non-contiguous.)
  if (t.dim() < 1 || t.dim() > 8) std::abort();
  const bool gzipped = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const size_t header = 4 + 4 * static_cast<size_t>(t.dim());
  if (!gzipped && static_cast<uint64_t>(t.numel()) > size - header) std::abort();
  return 0;
}
