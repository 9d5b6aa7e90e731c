#include "neutrino/data/image.h"

#include <memory>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace neutrino::data {

Tensor read_image(const std::string& path, int channels) {
  NEUTRINO_CHECK_VALUE(channels == 0 || channels == 1 || channels == 3,
                       "read_image: channels must be 0, 1 or 3, got {}", channels);
  int width = 0, height = 0, file_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load(path.c_str(), &width, &height, &file_channels, channels), stbi_image_free);
  NEUTRINO_CHECK_IO(pixels != nullptr, "{}: cannot read the image: {}", path, stbi_failure_reason());
  const int c = channels == 0 ? file_channels : channels;
  Tensor out = Tensor::empty({1, c, height, width});
  float* o = out.data<float>();
  const stbi_uc* p = pixels.get();
  // stb gives interleaved HWC; we want planar CHW.
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int ch = 0; ch < c; ++ch) {
        o[(static_cast<int64_t>(ch) * height + y) * width + x] = p[(static_cast<int64_t>(y) * width + x) * c + ch];
      }
    }
  }
  return out;
}

}  // namespace neutrino::data
