#include "neutrino/train/model_file.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

#include "neutrino/io/config_reader.h"
#include "neutrino/io/tensor_file.h"
#include "neutrino/nn/layer_config.h"

namespace neutrino::train {

using nlohmann::json;

namespace {
constexpr const char* kFormat = "neutrino.model/1";

json parse_metadata(const std::map<std::string, std::string>& metadata, const std::string& key,
                    const std::string& path) {
  auto it = metadata.find(key);
  NEUTRINO_CHECK_IO(it != metadata.end(), "{}: not a neutrino model file (no '{}' in the metadata)",
                    path, key);
  try {
    return json::parse(it->second);
  } catch (const json::exception& e) {
    throw IOError(fmt::format("{}: metadata '{}' is not valid JSON: {}", path, key, e.what()));
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
    const Tensor c = tensor.detach().contiguous();
    const std::string header = fmt::format("{}|{}|{}|", name, dtype_name(c.dtype()), c.shape_string());
    feed(header.data(), header.size());
    feed(c.raw_data(), static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
  }
  return fmt::format("crc32:{:08x}", crc);
}

std::string model_to_json(const Sequential& model) {
  json layers = json::array();
  for (const auto& layer : model.layers()) layers.push_back(json::parse(nn::layer_to_config(*layer)));
  json out{{"class_name", "Sequential"}, {"name", model.name()}, {"layers", layers}};
  if (model.built()) {
    const Shape& shape = model.layers().front()->built_input_shape();
    out["input_shape"] = std::vector<int64_t>(shape.begin(), shape.end());
  }
  return out.dump();
}

Sequential model_from_json(const std::string& text, const std::string& path) {
  json parsed;
  try {
    parsed = json::parse(text);
  } catch (const json::exception& e) {
    throw ValueError(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
  io::ConfigReader r(parsed, path);
  const std::string class_name = r.get_string("class_name", "Sequential");
  NEUTRINO_CHECK_VALUE(class_name == "Sequential", "{}.class_name: only Sequential models, got '{}'",
                       path, class_name);
  Sequential model({}, r.get_string("name", "sequential"));
  const std::vector<int64_t> input_shape = r.get_ints("input_shape", {});
  NEUTRINO_CHECK_VALUE(r.has("layers"), "{}.layers: missing required field", path);
  const json& layers = r.get_raw("layers");
  NEUTRINO_CHECK_VALUE(layers.is_array() && !layers.empty(), "{}.layers: expected a non-empty list",
                       path);
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string where = fmt::format("{}.layers[{}]", path, i);
    model.add(nn::layer_from_config(layers[i].dump(), where));
  }
  r.finish();
  if (!input_shape.empty() && !model.built()) model.build(input_shape);
  return model;
}

namespace {
constexpr const char* kCheckpointFormat = "neutrino.checkpoint/1";
constexpr const char* kOptimizerPrefix = "optimizer/";

void write_file(const std::string& path, const Sequential& model, const ModelInfo& info,
                std::map<std::string, Tensor> tensors, std::map<std::string, std::string> metadata,
                const char* format) {
  NEUTRINO_CHECK_VALUE(model.built(), "save: the model is not built (no weights to save)");
  for (const auto& [name, t] : model.state_dict()) tensors[name] = t;
  for (const auto& [key, value] : info.extra) metadata.emplace(key, value);
  metadata["format"] = format;
  metadata["architecture"] = model_to_json(model);
  metadata["preprocessing"] = info.preprocessing;
  metadata["class_names"] = json(info.class_names).dump();
  // The policy as set (not the effective one), so a bf16 model trained on a CPU without bf16
  // still runs in bf16 where eval/predict can.
  metadata["mixed_precision"] = precision_name(model.mixed_precision_policy());
  metadata["checksum"] = tensors_checksum(tensors);
  io::save_tensors(path, tensors, metadata);
}

// Reads a model or checkpoint file, checking its format and checksum.
io::TensorFile read_file(const std::string& path, const char* format) {
  io::TensorFile file = io::load_tensors(path);
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

ModelInfo info_from(const io::TensorFile& file, const std::string& path) {
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
    if (key != "format" && key != "architecture" && key != "preprocessing" &&
        key != "class_names" && key != "checksum" && key != "training_state" &&
        key != "mixed_precision") {
      info.extra[key] = value;
    }
  }
  return info;
}

std::map<std::string, Tensor> model_tensors(const io::TensorFile& file) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : file.tensors) {
    if (!name.starts_with(kOptimizerPrefix)) out.emplace(name, t);
  }
  return out;
}
}  // namespace

void save_model(const std::string& path, const Sequential& model) {
  save_model(path, model, model.info);
}

void save_model(const std::string& path, const Sequential& model, const ModelInfo& info) {
  write_file(path, model, info, {}, {}, kFormat);
}

Sequential load_model(const std::string& path) {
  const io::TensorFile file = read_file(path, kFormat);
  Sequential model;
  try {
    model = model_from_json(parse_metadata(file.metadata, "architecture", path).dump(),
                            path + ": architecture");
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
  NEUTRINO_CHECK_IO(model.built(), "{}: the architecture has no input_shape", path);
  try {
    model.load_state_dict(file.tensors);
  } catch (const Error& e) {
    throw IOError(fmt::format("{}: {}", path, e.what()));
  }
  model.info = info_from(file, path);
  // Files from before mixed precision have no key: they were trained in fp32.
  if (auto it = file.metadata.find("mixed_precision"); it != file.metadata.end()) {
    try {
      model.set_mixed_precision(parse_precision(it->second));
    } catch (const ValueError& e) {
      throw IOError(fmt::format("{}: {}", path, e.what()));
    }
  }
  model.eval();
  return model;
}

void save_checkpoint(const std::string& path, const Sequential& model, const TrainingState& state) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [key, t] : model.optimizer().state()) tensors[kOptimizerPrefix + key] = t;
  json history = json::object();
  for (const auto& [name, values] : state.history.history) history[name] = values;
  const json training{{"epochs_done", state.epochs_done},
                      {"shuffle_seed", std::to_string(state.shuffle_seed)},
                      {"rng_state", state.rng_state},
                      {"history", history},
                      {"callbacks", state.callback_states},
                      {"optimizer", model.optimizer().name()}};
  write_file(path, model, model.info, tensors, {{"training_state", training.dump()}},
             kCheckpointFormat);
}

TrainingState load_checkpoint(const std::string& path, Sequential& model) {
  const io::TensorFile file = read_file(path, kCheckpointFormat);
  TrainingState state;
  try {
    const json training = parse_metadata(file.metadata, "training_state", path);
    state.epochs_done = training.at("epochs_done").get<int>();
    state.shuffle_seed = std::stoull(training.at("shuffle_seed").get<std::string>());
    state.rng_state = training.at("rng_state").get<std::string>();
    for (const auto& [name, values] : training.at("history").items()) {
      state.history.history[name] = values.get<std::vector<double>>();
    }
    state.history.epochs = state.epochs_done;
    state.callback_states = training.at("callbacks").get<std::map<std::string, std::string>>();
    NEUTRINO_CHECK_IO(training.at("optimizer").get<std::string>() == model.optimizer().name(),
                      "{}: saved with optimizer {}, but the model is compiled with {}", path,
                      training.at("optimizer").get<std::string>(), model.optimizer().name());
  } catch (const json::exception& e) {
    throw IOError(fmt::format("{}: malformed training_state: {}", path, e.what()));
  }
  try {
    model.load_state_dict(model_tensors(file));
    std::map<std::string, Tensor> optimizer_state;
    for (const auto& [name, t] : file.tensors) {
      if (name.starts_with(kOptimizerPrefix)) {
        optimizer_state[name.substr(std::string(kOptimizerPrefix).size())] = t;
      }
    }
    model.optimizer().load_state(optimizer_state);
  } catch (const IOError&) {
    throw;
  } catch (const Error& e) {
    throw IOError(fmt::format("{}: {}", path, e.what()));
  }
  model.info = info_from(file, path);
  return state;
}

}  // namespace neutrino::train
