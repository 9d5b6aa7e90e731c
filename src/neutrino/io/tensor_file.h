// Named tensors to and from .safetensors files (PyTorch and Hugging Face exchange format).
#pragma once

#include <map>
#include <string>

#include "neutrino/tensor/tensor.h"

namespace neutrino::io {

struct TensorFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Loads F32, F64, I64 and BOOL/U8 tensors (U8 as bool only when every byte is 0 or 1); other
// dtypes are refused with an IOError naming the tensor.
TensorFile load_tensors(const std::string& path);
// Saves atomically (temporary file, fsync, rename).
void save_tensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata = {});

}  // namespace neutrino::io
