#include "neutrino/io/model_file.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "neutrino/core/random.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/io/tensor_file.h"

namespace neutrino::io {

using nlohmann::json;

namespace {
constexpr const char* kModelFormat = "neutrino.model/1";
constexpr const char* kCheckpointFormat = "neutrino.checkpoint/1";
constexpr const char* kOptimizerPrefix = "optimizer/";
// Callback tensors (EarlyStopping's best weights): "callback/<position>:<name>/<tensor>".
constexpr const char* kCallbackPrefix = "callback/";

const char* format_of(ModelFileKind kind) {
  return kind == ModelFileKind::kModel ? kModelFormat : kCheckpointFormat;
}

json parse_metadata(const std::map<std::string, std::string>& metadata, const std::string& key,
                    const std::string& path) {
  auto it = metadata.find(key);
  NEUTRINO_CHECK_IO(it != metadata.end(), "{}: not a neutrino model file (no '{}' in the metadata)",
                    path, key);
  try {
    return parse_json(it->second, fmt::format("{}: metadata '{}'", path, key));
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
}

template <class T>
bool all_finite(const Tensor& t) {
  const T* p = t.data<T>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) {
    if (!std::isfinite(static_cast<double>(p[i]))) return false;
  }
  return true;
}

// NaN or infinite weights would load silently and turn every output into NaN: refused, naming
// the tensor.
void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& path) {
  for (const auto& [name, t] : tensors) {
    if (!is_floating(t.dtype())) continue;
    const Tensor c = densify(t, t.dtype() == DType::kBFloat16 ? DType::kFloat32 : t.dtype());
    const bool finite = c.dtype() == DType::kFloat64 ? all_finite<double>(c) : all_finite<float>(c);
    NEUTRINO_CHECK_IO(finite, "{}: tensor '{}' holds NaN or infinite values", path, name);
  }
}

// A uint64 written as decimal text (JSON numbers lose precision past 2^53).
uint64_t parse_u64(const std::string& text, const std::string& field) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  NEUTRINO_CHECK_VALUE(!text.empty() && ec == std::errc() && ptr == end,
                       "{}: expected an unsigned 64-bit integer as text, got {}", field,
                       describe(text));
  return value;
}

std::vector<double> history_values(const json& values, const std::string& field) {
  NEUTRINO_CHECK_VALUE(values.is_array(), "{}: expected a list of numbers, got {}", field,
                       describe(values));
  std::vector<double> out;
  for (const json& v : values) {
    // A non-finite value (an infinite val_loss) is written as null.
    NEUTRINO_CHECK_VALUE(v.is_number() || v.is_null(), "{}: expected a list of numbers, got {}",
                         field, describe(values));
    out.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>());
  }
  return out;
}

std::string training_state_json(const TrainingState& state) {
  json history = json::object();
  for (const auto& [name, values] : state.history) history[name] = values;
  return json{{"epochs_done", state.epochs_done},
              {"shuffle_seed", std::to_string(state.shuffle_seed)},
              {"rng_state", state.rng_state},
              {"history", history},
              {"callbacks", state.callback_states},
              {"optimizer", state.optimizer},
              {"stopped", state.stopped},
              {"steps_done", state.steps_done},
              {"data_position", state.data_position}}
      .dump();
}

TrainingState parse_training_state(const json& value, const std::string& where) {
  ConfigReader t(value, where);
  TrainingState state;
  state.epochs_done = static_cast<int>(t.require_int("epochs_done", 0, INT32_MAX));
  state.shuffle_seed = parse_u64(t.require_string("shuffle_seed"), t.path_of("shuffle_seed"));
  state.rng_state = t.require_string("rng_state");
  try {
    Generator(0).set_state(state.rng_state);
  } catch (const ValueError&) {
    throw ValueError(fmt::format("{}: malformed generator state {}", t.path_of("rng_state"),
                                 describe(state.rng_state)));
  }
  const json& history = t.require_raw("history");
  NEUTRINO_CHECK_VALUE(history.is_object(), "{}: expected a map of lists", t.path_of("history"));
  for (const auto& [name, values] : history.items()) {
    state.history[name] = history_values(values, t.path_of("history") + "." + name);
  }
  const json& callbacks = t.require_raw("callbacks");
  NEUTRINO_CHECK_VALUE(callbacks.is_object(), "{}: expected a map of texts",
                       t.path_of("callbacks"));
  for (const auto& [key, text] : callbacks.items()) {
    NEUTRINO_CHECK_VALUE(text.is_string(), "{}.{}: expected a text, got {}", t.path_of("callbacks"),
                         key, describe(text));
    state.callback_states[key] = text.get<std::string>();
  }
  state.optimizer = t.require_string("optimizer");
  state.stopped = t.get_bool("stopped", false);
  state.steps_done = t.get_int("steps_done", 0, 0);
  state.data_position = t.get_int("data_position", 0, 0);
  t.finish();
  return state;
}

// Reads a file of the given format, checking its checksum.
TensorFile read_checked(const std::string& path, const char* format) {
  TensorFile file = load_tensors(path);
  auto found = file.metadata.find("format");
  NEUTRINO_CHECK_IO(found != file.metadata.end() && found->second == format,
                    "{}: not a {} file (format '{}')", path, format,
                    found == file.metadata.end() ? "missing" : found->second);
  const std::string expected = file.metadata.count("checksum") ? file.metadata.at("checksum") : "";
  const std::string actual = tensors_checksum(file.tensors);
  NEUTRINO_CHECK_IO(expected == actual,
                    "{}: checksum mismatch (file says {}, data gives {}): the file is damaged",
                    path, expected.empty() ? "none" : expected, actual);
  return file;
}

bool is_reserved(const std::string& key) {
  return key == "format" || key == "architecture" || key == "preprocessing" ||
         key == "class_names" || key == "checksum" || key == "training_state" ||
         key == "mixed_precision";
}

ModelInfo info_from(const TensorFile& file, const std::string& path) {
  ModelInfo info;
  if (file.metadata.count("preprocessing")) info.preprocessing = file.metadata.at("preprocessing");
  const json names = file.metadata.count("class_names")
                         ? parse_metadata(file.metadata, "class_names", path)
                         : json::array();
  NEUTRINO_CHECK_IO(names.is_array(), "{}: class_names must be a list", path);
  for (const json& n : names) {
    NEUTRINO_CHECK_IO(n.is_string(), "{}: class_names must be strings", path);
    info.class_names.push_back(n.get<std::string>());
  }
  for (const auto& [key, value] : file.metadata) {
    if (!is_reserved(key)) info.extra[key] = value;
  }
  return info;
}

// Files from before mixed precision have no such field: they were trained in fp32.
Precision precision_from(const TensorFile& file, const std::string& path) {
  auto it = file.metadata.find("mixed_precision");
  if (it == file.metadata.end()) return Precision::kFloat32;
  try {
    return parse_precision(it->second);
  } catch (const ValueError& e) {
    throw IOError(fmt::format("{}: {}", path, e.what()));
  }
}

TrainingState training_from(const TensorFile& file, const std::string& path) {
  try {
    return parse_training_state(parse_metadata(file.metadata, "training_state", path),
                                path + ": training_state");
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
}

// A checkpoint's tensors: optimizer state, callback tensors, and the rest weights.
void split_checkpoint_tensors(std::map<std::string, Tensor>& tensors, const std::string& path,
                              ModelFile& out) {
  const std::string optimizer = kOptimizerPrefix, callback = kCallbackPrefix;
  for (auto& [name, t] : tensors) {
    if (name.starts_with(optimizer)) {
      out.optimizer_state.emplace(name.substr(optimizer.size()), std::move(t));
    } else if (name.starts_with(callback)) {
      const std::string key = name.substr(callback.size());
      const size_t slash = key.find('/');
      NEUTRINO_CHECK_IO(slash != std::string::npos, "{}: malformed callback tensor name '{}'", path,
                        name);
      out.training.callback_tensors[key.substr(0, slash)][key.substr(slash + 1)] = std::move(t);
    } else {
      out.weights.emplace(name, std::move(t));
    }
  }
}
}  // namespace

std::string tensors_checksum(const std::map<std::string, Tensor>& tensors) {
  uLong crc = crc32(0L, Z_NULL, 0);
  auto feed = [&](const void* data, size_t size) {
    const auto* bytes = static_cast<const Bytef*>(data);
    // zlib takes uInt lengths: feed large buffers in chunks.
    while (size > 0) {
      const uInt chunk = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
      crc = crc32(crc, bytes, chunk);
      bytes += chunk;
      size -= chunk;
    }
  };
  for (const auto& [name, tensor] : tensors) {
    const Tensor c = densify(tensor.detach());
    const std::string header =
        fmt::format("{}|{}|{}|", name, dtype_name(c.dtype()), c.shape_string());
    feed(header.data(), header.size());
    feed(c.raw_data(), static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
  }
  return fmt::format("crc32:{:08x}", crc);
}

void write_model_file(const std::string& path, const ModelFile& file, ModelFileKind kind) {
  std::map<std::string, Tensor> tensors = file.weights;
  std::map<std::string, std::string> metadata = file.info.extra;
  if (kind == ModelFileKind::kCheckpoint) {
    for (const auto& [key, t] : file.optimizer_state) tensors[kOptimizerPrefix + key] = t;
    for (const auto& [key, named] : file.training.callback_tensors) {
      for (const auto& [name, t] : named) tensors[kCallbackPrefix + key + "/" + name] = t;
    }
    metadata["training_state"] = training_state_json(file.training);
  }
  metadata["format"] = format_of(kind);
  metadata["architecture"] = file.architecture;
  metadata["preprocessing"] = file.info.preprocessing;
  metadata["class_names"] = json(file.info.class_names).dump();
  metadata["mixed_precision"] = precision_name(file.mixed_precision);
  metadata["checksum"] = tensors_checksum(tensors);
  save_tensors(path, tensors, metadata);
}

ModelFile read_model_file(const std::string& path, ModelFileKind kind) {
  TensorFile file = read_checked(path, format_of(kind));
  ModelFile out;
  auto architecture = file.metadata.find("architecture");
  NEUTRINO_CHECK_IO(architecture != file.metadata.end(),
                    "{}: not a neutrino model file (no "
                    "'architecture' in the metadata)",
                    path);
  out.architecture = architecture->second;
  const bool checkpoint = kind == ModelFileKind::kCheckpoint;
  if (checkpoint) out.training = training_from(file, path);
  check_finite(file.tensors, path);
  if (checkpoint) {
    split_checkpoint_tensors(file.tensors, path, out);
  } else {
    out.weights = std::move(file.tensors);
  }
  out.info = info_from(file, path);
  out.mixed_precision = precision_from(file, path);
  return out;
}

}  // namespace neutrino::io
