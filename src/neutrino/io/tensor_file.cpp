#include "neutrino/io/tensor_file.h"

#include <cstring>

#include "neutrino/io/safetensors.h"

namespace neutrino::io {

namespace {
DType dtype_from_file(const std::string& name, const std::string& tensor, const std::string& path) {
  if (name == "F32") return DType::kFloat32;
  if (name == "F64") return DType::kFloat64;
  if (name == "I64") return DType::kInt64;
  if (name == "BF16") return DType::kBFloat16;
  if (name == "BOOL" || name == "U8") return DType::kBool;
  throw IOError(fmt::format("{}: tensor '{}' has dtype {}, which neutrino does not load (F32, F64, "
                            "I64, BF16, BOOL, U8)",
                            path, tensor, name));
}

const char* dtype_to_file(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "F32";
    case DType::kFloat64:
      return "F64";
    case DType::kInt64:
      return "I64";
    case DType::kBool:
      return "BOOL";
    case DType::kBFloat16:
      return "BF16";
  }
  return "?";
}
}  // namespace

TensorFile load_tensors(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  TensorFile out;
  out.metadata = std::move(file.metadata);
  for (auto& [name, raw] : file.tensors) {
    const DType dtype = dtype_from_file(raw.dtype, name, path);
    if (dtype == DType::kBool) {
      for (uint8_t byte : raw.data) {
        NEUTRINO_CHECK_IO(byte <= 1, "{}: tensor '{}' ({}) holds a byte other than 0 or 1", path,
                          name, raw.dtype);
      }
    }
    Tensor t = Tensor::empty(raw.shape, dtype);
    NEUTRINO_CHECK_IO(raw.data.size() == static_cast<size_t>(t.numel()) * dtype_size(dtype),
                      "{}: tensor '{}' has {} bytes for shape {}", path, name, raw.data.size(),
                      t.shape_string());
    if (!raw.data.empty()) std::memcpy(t.raw_data(), raw.data.data(), raw.data.size());
    out.tensors.emplace(name, std::move(t));
  }
  return out;
}

void save_tensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                  const std::map<std::string, std::string>& metadata) {
  SafetensorsFile file;
  file.metadata = metadata;
  for (const auto& [name, tensor] : tensors) {
    NEUTRINO_CHECK_VALUE(tensor.defined(), "save_tensors: tensor '{}' is undefined", name);
    const Tensor c = densify(tensor.detach());
    RawTensor raw;
    raw.dtype = dtype_to_file(c.dtype());
    raw.shape = c.shape();
    raw.data.resize(static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
    if (!raw.data.empty()) std::memcpy(raw.data.data(), c.raw_data(), raw.data.size());
    file.tensors.emplace(name, std::move(raw));
  }
  write_safetensors(path, file);
}

}  // namespace neutrino::io
