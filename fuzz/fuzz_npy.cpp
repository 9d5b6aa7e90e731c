// libFuzzer target for the NPY reader and, for inputs starting "PK", the NPZ (zip) reader. Any
// input must either be refused with a neutrino::Error or be accepted; what is accepted must then
// survive our writer and read back unchanged. A crash, a sanitizer report, any other exception or
// a changed round trip is a bug.
//
//   clang++-14 -std=c++20 -fsanitize=fuzzer,address,undefined -Isrc src/neutrino/data/npy.cpp \
//       fuzz/fuzz_npy.cpp build/lib/libneutrino.a -lfmt -lz -o fuzz_npy
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/data/npy.h"

namespace {

using neutrino::Tensor;

bool same(const Tensor& a, const Tensor& b) {
  // Both come straight from the reader, so their storage is in C order (is_contiguous() is not
  // asked: Tensor reports an empty (2, 0, 3) tensor as non-contiguous).
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(),
                     static_cast<size_t>(a.numel()) * neutrino::dtype_size(a.dtype())) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace nd = neutrino::data;
  if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
    std::map<std::string, Tensor> tensors;
    try {
      tensors = nd::read_npz_bytes(data, size, "fuzz.npz");
    } catch (const neutrino::Error&) {
      return 0;  // refusing the input is the expected outcome for most fuzzed files
    }
    // Outside the try: the writer and the second read must not fail on what was accepted.
    const std::vector<uint8_t> bytes = nd::write_npz_bytes(tensors);
    const std::map<std::string, Tensor> again =
        nd::read_npz_bytes(bytes.data(), bytes.size(), "fuzz round trip");
    if (again.size() != tensors.size()) std::abort();
    for (const auto& [key, t] : tensors) {
      const auto it = again.find(key);
      if (it == again.end() || !same(t, it->second)) std::abort();
    }
    return 0;
  }
  Tensor t;
  try {
    t = nd::read_npy_bytes(data, size, "fuzz.npy");
  } catch (const neutrino::Error&) {
    return 0;
  }
  const std::vector<uint8_t> bytes = nd::write_npy_bytes(t);
  if (!same(t, nd::read_npy_bytes(bytes.data(), bytes.size(), "fuzz round trip"))) std::abort();
  return 0;
}
