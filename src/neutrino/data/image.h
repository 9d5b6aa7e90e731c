// Image files (PNG, JPEG, BMP, ... through stb_image) as float32 (1, C, H, W) tensors of raw
// pixel values 0..255, channels-first like the rest of neutrino.
#pragma once

#include <string>

#include "neutrino/tensor/tensor.h"

namespace neutrino::data {

// `channels`: 0 keeps the file's own, 1 converts to grey, 3 to RGB. Errors name the file.
Tensor read_image(const std::string& path, int channels = 0);

}  // namespace neutrino::data
