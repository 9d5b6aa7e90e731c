// libFuzzer target for image decoding (PNG, JPEG, BMP through stb_image behind neutrino's own
// checks of the declared size, truncation and inflated size). Any input must either be refused
// with a neutrino::Error or decode to a (1, C, H, W) tensor of the declared size with values in
// 0..255; a crash, a sanitizer report, any other exception or a wrong tensor is a bug. Each input
// is decoded as the file declares it, and again as grey and as RGB (the conversions).
//
//   build: CXX=clang++-14 scripts/build.sh build-fuzz -DNEUTRINO_BUILD_FUZZERS=ON ...
//   run:   build-fuzz/bin/fuzz_image fuzz/corpus/fuzz_image -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/data/image.h"

namespace {

// Small enough that a fuzzed header cannot make each run decode megapixels.
constexpr int64_t kFuzzMaxPixels = int64_t{1} << 18;

void decode_checked(const uint8_t* data, size_t size, int channels) {
  namespace nd = neutrino::data;
  nd::ImageInfo info;
  nd::Image image;
  try {
    info = nd::image_info(data, size, "fuzz.img");
    image = nd::decode_image(data, size, "fuzz.img",
                             {.channels = channels, .max_pixels = kFuzzMaxPixels});
  } catch (const neutrino::Error&) {
    return;  // refusing the input is the expected outcome for most fuzzed files
  }
  const neutrino::Tensor& t = image.pixels;
  const int64_t want_c = channels == 0 ? info.channels : channels;
  if (t.dim() != 4 || t.size(0) != 1 || t.size(1) != want_c || t.size(2) != info.height ||
      t.size(3) != info.width) {
    std::abort();
  }
  for (const float v : t.to_vector<float>()) {
    if (!(v >= 0 && v <= 255)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const int channels : {0, 1, 3}) decode_checked(data, size, channels);
  return 0;
}
