#include "neutrino/train/model_file.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
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
    return io::parse_json(it->second, fmt::format("{}: metadata '{}'", path, key));
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
}

// Refuses an architecture whose weights would not have the stored tensors' shapes, before any
// weight is allocated: a small file cannot make the reader allocate gigabytes.
void check_stored_shapes(const std::map<std::string, Shape>& planned,
                         const std::map<std::string, Shape>& stored, const std::string& path) {
  for (const auto& [name, shape] : planned) {
    auto it = stored.find(name);
    NEUTRINO_CHECK_SHAPE(it != stored.end(), "{}: the architecture has a tensor '{}' {} that the "
                         "file does not hold", path, name, shape_str(shape));
    NEUTRINO_CHECK_SHAPE(it->second == shape, "{}: tensor '{}' has shape {} in the file, but the "
                         "architecture makes it {}", path, name, shape_str(it->second),
                         shape_str(shape));
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

namespace {
json shape_json(const Shape& shape) { return json(std::vector<int64_t>(shape.begin(), shape.end())); }

// {"class_name": "Functional", "inputs": [{"name": "input", "shape": [...]}],
//  "layers": [{"Conv2D": {"name": "c1", "inputs": ["input"], ...}}], "outputs": ["add"]}
json graph_to_json(const Model& model, const nn::Graph& graph) {
  json inputs = json::array(), layers = json::array(), outputs = json::array();
  const std::vector<Shape> shapes = graph.input_shapes();
  for (size_t k = 0; k < graph.input_nodes().size(); ++k) {
    const auto& node = graph.nodes()[static_cast<size_t>(graph.input_nodes()[k])];
    json in{{"name", node.name}};
    if (!shapes[k].empty()) in["shape"] = shape_json(shapes[k]);
    inputs.push_back(in);
  }
  std::set<const nn::Layer*> seen;
  for (const auto& node : graph.nodes()) {
    if (!node.layer) continue;
    NEUTRINO_CHECK_VALUE(seen.insert(node.layer.get()).second,
                         "save: layer '{}' is called more than once (shared weights); such graphs "
                         "cannot be written as a config yet", node.name);
    json config = json::parse(nn::layer_to_config(*node.layer));
    json names = json::array();
    for (int in : node.inputs) names.push_back(graph.nodes()[static_cast<size_t>(in)].name);
    config.begin().value()["inputs"] = names;
    layers.push_back(config);
  }
  for (int o : graph.output_nodes()) outputs.push_back(graph.nodes()[static_cast<size_t>(o)].name);
  return json{{"class_name", "Functional"}, {"name", model.name()}, {"inputs", inputs},
              {"layers", layers}, {"outputs", outputs}};
}

// The names in a layer's or the model's `inputs`/`outputs`: one name or a list of names.
std::vector<std::string> name_list(const json& value, const std::string& where) {
  if (value.is_string()) return {value.get<std::string>()};
  NEUTRINO_CHECK_VALUE(value.is_array() && !value.empty(), "{}: expected a name or a list of names, "
                       "got {}", where, io::describe(value));
  std::vector<std::string> out;
  for (const json& v : value) {
    NEUTRINO_CHECK_VALUE(v.is_string(), "{}: expected a name or a list of names, got {}", where,
                         io::describe(value));
    out.push_back(v.get<std::string>());
  }
  return out;
}

int node_named(const nn::Graph& graph, const std::string& name, const std::string& where) {
  const int id = graph.find(name);
  NEUTRINO_CHECK_VALUE(id >= 0, "{}: no input or earlier layer is named '{}' (a layer takes the "
                       "model input 'input' or layers above it)", where, name);
  return id;
}

// Refuses an architecture whose weights would not fit the limits or the stored tensors, then
// builds it.
void plan_and_build(Model& model, const std::vector<Shape>& shapes, const std::string& path,
                    const std::map<std::string, Shape>* stored_shapes) {
  try {
    const std::map<std::string, Shape> planned = model.planned_state(shapes);
    if (stored_shapes != nullptr) check_stored_shapes(planned, *stored_shapes, path);
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    throw ValueError(what.starts_with(path) ? what : fmt::format("{}: {}", path, what));
  }
  model.build_inputs(shapes);
}
}  // namespace

std::string model_to_json(const Model& model) {
  const nn::Graph* graph = model.graph();
  if (graph == nullptr) return json{{"class_name", "Subclassed"}, {"name", model.name()}}.dump();
  if (!graph->is_chain()) return graph_to_json(model, *graph).dump();
  json layers = json::array();
  for (const auto& layer : model.layers()) layers.push_back(json::parse(nn::layer_to_config(*layer)));
  json out{{"class_name", "Sequential"}, {"name", model.name()}, {"layers", layers}};
  if (model.built()) out["input_shape"] = shape_json(model.input_shapes().front());
  return out.dump();
}

Model model_from_json(const std::string& text, const std::string& path,
                      const std::map<std::string, Shape>* stored_shapes) {
  io::ConfigReader r(io::parse_json(text, path), path);
  const std::string class_name = r.get_string("class_name", "Sequential");
  NEUTRINO_CHECK_VALUE(class_name != "Subclassed", "{}: saved from a subclassed model (a C++ "
                       "class): construct it in C++ and load the weights with load_weights()", path);
  NEUTRINO_CHECK_VALUE(class_name == "Sequential" || class_name == "Functional",
                       "{}.class_name: expected Sequential or Functional, got '{}'", path, class_name);
  const std::string name = r.get_string("name", class_name == "Sequential" ? "sequential" : "model");
  const std::vector<int64_t> input_shape =
      r.get_ints("input_shape", {}, 1, nn::kMaxLayerElements);
  const json& layers = r.require_raw("layers");
  NEUTRINO_CHECK_VALUE(layers.is_array() && !layers.empty(), "{}.layers: expected a non-empty list",
                       path);
  NEUTRINO_CHECK_VALUE(layers.size() <= Model::kMaxLayers,
                       "{}.layers: {} layers, more than the limit of {}", path, layers.size(),
                       Model::kMaxLayers);
  // A layer's `inputs` belongs to the graph, not to the layer's options.
  std::vector<nn::LayerPtr> built_layers;
  std::vector<std::optional<std::vector<std::string>>> layer_inputs;
  std::vector<std::string> input_fields;  // "path.layers[i].Type.inputs", for errors
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string where = fmt::format("{}.layers[{}]", path, i);
    json entry = layers[i];
    std::optional<std::vector<std::string>> names;
    if (entry.is_object() && entry.size() == 1 && entry.begin().value().is_object() &&
        entry.begin().value().contains("inputs")) {
      json& options = entry.begin().value();
      names = name_list(options["inputs"], fmt::format("{}.{}.inputs", where, entry.begin().key()));
      options.erase("inputs");
    }
    built_layers.push_back(nn::layer_from_config(entry, where));
    input_fields.push_back(fmt::format("{}.{}.inputs", where, built_layers.back()->type_name()));
    layer_inputs.push_back(std::move(names));
  }
  const bool graph_mode = class_name == "Functional" || r.has("inputs") || r.has("outputs") ||
                          std::any_of(layer_inputs.begin(), layer_inputs.end(),
                                      [](const auto& n) { return n.has_value(); });
  // The first layer's own input_shape wins over the model's, as when layers are added one by one.
  const Shape& declared = built_layers.front()->declared_input_shape();
  const Shape shape = declared.empty() ? Shape(input_shape.begin(), input_shape.end()) : declared;
  if (!graph_mode) {
    r.finish();
    Sequential model({}, name);
    for (const auto& layer : built_layers) model.add(layer, /*build=*/false);
    if (!shape.empty()) plan_and_build(model, {shape}, path, stored_shapes);
    return model;
  }
  auto graph = std::make_shared<nn::Graph>();
  std::vector<Shape> shapes;
  if (r.has("inputs")) {
    const json& inputs = r.get_raw("inputs");
    NEUTRINO_CHECK_VALUE(inputs.is_array() && !inputs.empty(), "{}.inputs: expected a non-empty "
                         "list of {{name, shape}}", path);
    for (size_t k = 0; k < inputs.size(); ++k) {
      io::ConfigReader in(inputs[k], fmt::format("{}.inputs[{}]", path, k));
      graph->add_input(in.require_string("name"));
      const std::vector<int64_t> dims = in.get_ints("shape", {}, 1, nn::kMaxLayerElements);
      shapes.emplace_back(dims.begin(), dims.end());
      in.finish();
    }
  } else {
    graph->add_input("input");
    shapes.push_back(shape);
  }
  for (size_t i = 0; i < built_layers.size(); ++i) {
    const std::string where = fmt::format("{}.layers[{}]", path, i);
    std::vector<int> args;
    if (layer_inputs[i]) {
      for (const auto& n : *layer_inputs[i]) args.push_back(node_named(*graph, n, input_fields[i]));
    } else {
      args.push_back(static_cast<int>(graph->nodes().size()) - 1);  // the layer above
    }
    try {
      graph->add_layer(built_layers[i], args);
    } catch (const ValueError& e) {
      throw ValueError(fmt::format("{}: {}", where, e.what()));
    }
  }
  std::vector<int> outputs;
  if (r.has("outputs")) {
    for (const auto& n : name_list(r.get_raw("outputs"), path + ".outputs")) {
      outputs.push_back(node_named(*graph, n, path + ".outputs"));
    }
  } else {
    outputs.push_back(static_cast<int>(graph->nodes().size()) - 1);
  }
  graph->set_outputs(outputs);
  r.finish();
  Model model(graph, name);
  const bool known = std::all_of(shapes.begin(), shapes.end(), [](const Shape& s) { return !s.empty(); });
  if (known) plan_and_build(model, shapes, path, stored_shapes);
  return model;
}

namespace {
constexpr const char* kCheckpointFormat = "neutrino.checkpoint/1";
constexpr const char* kOptimizerPrefix = "optimizer/";
// Callback tensors (EarlyStopping's best weights): "callback/<position>:<name>/<tensor>".
constexpr const char* kCallbackPrefix = "callback/";

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
    const Tensor c = t.dtype() == DType::kBFloat16 ? t.to(DType::kFloat32) : t.contiguous();
    const bool finite = c.dtype() == DType::kFloat64 ? all_finite<double>(c) : all_finite<float>(c);
    NEUTRINO_CHECK_IO(finite, "{}: tensor '{}' holds NaN or infinite values", path, name);
  }
}

void write_file(const std::string& path, const Model& model, const ModelInfo& info,
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
    if (!name.starts_with(kOptimizerPrefix) && !name.starts_with(kCallbackPrefix)) {
      out.emplace(name, t);
    }
  }
  return out;
}

// The tensors under `prefix`, with the prefix taken off.
std::map<std::string, Tensor> tensors_under(const io::TensorFile& file, const std::string& prefix) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : file.tensors) {
    if (name.starts_with(prefix)) out.emplace(name.substr(prefix.size()), t);
  }
  return out;
}

// A uint64 written as decimal text (JSON numbers lose precision past 2^53).
uint64_t parse_u64(const std::string& text, const std::string& field) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  NEUTRINO_CHECK_VALUE(!text.empty() && ec == std::errc() && ptr == end,
                       "{}: expected an unsigned 64-bit integer as text, got {}", field,
                       io::describe(text));
  return value;
}

std::vector<double> history_values(const json& values, const std::string& field) {
  NEUTRINO_CHECK_VALUE(values.is_array(), "{}: expected a list of numbers, got {}", field,
                       io::describe(values));
  std::vector<double> out;
  for (const json& v : values) {
    // A non-finite value (an infinite val_loss) is written as null.
    NEUTRINO_CHECK_VALUE(v.is_number() || v.is_null(), "{}: expected a list of numbers, got {}",
                         field, io::describe(values));
    out.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>());
  }
  return out;
}

TrainingState parse_training_state(const json& value, const std::string& where) {
  io::ConfigReader t(value, where);
  TrainingState state;
  state.epochs_done = static_cast<int>(t.require_int("epochs_done", 0, INT32_MAX));
  state.shuffle_seed = parse_u64(t.require_string("shuffle_seed"), t.path_of("shuffle_seed"));
  state.rng_state = t.require_string("rng_state");
  try {
    Generator(0).set_state(state.rng_state);
  } catch (const ValueError&) {
    throw ValueError(fmt::format("{}: malformed generator state {}", t.path_of("rng_state"),
                                 io::describe(state.rng_state)));
  }
  const json& history = t.require_raw("history");
  NEUTRINO_CHECK_VALUE(history.is_object(), "{}: expected a map of lists",
                       t.path_of("history"));
  for (const auto& [name, values] : history.items()) {
    state.history.history[name] = history_values(values, t.path_of("history") + "." + name);
  }
  state.history.epochs = state.epochs_done;
  const json& callbacks = t.require_raw("callbacks");
  NEUTRINO_CHECK_VALUE(callbacks.is_object(), "{}: expected a map of texts", t.path_of("callbacks"));
  for (const auto& [key, text] : callbacks.items()) {
    NEUTRINO_CHECK_VALUE(text.is_string(), "{}.{}: expected a text, got {}", t.path_of("callbacks"),
                         key, io::describe(text));
    state.callback_states[key] = text.get<std::string>();
  }
  state.optimizer = t.require_string("optimizer");
  state.stopped = t.get_bool("stopped", false);
  t.finish();
  return state;
}
}  // namespace

void save_model(const std::string& path, const Model& model) {
  save_model(path, model, model.info);
}

void save_model(const std::string& path, const Model& model, const ModelInfo& info) {
  write_file(path, model, info, {}, {}, kFormat);
}

Model load_model(const std::string& path) {
  const io::TensorFile file = read_file(path, kFormat);
  Model model = Sequential();
  std::map<std::string, Shape> stored;
  for (const auto& [name, t] : file.tensors) stored.emplace(name, t.shape());
  auto found = file.metadata.find("architecture");
  NEUTRINO_CHECK_IO(found != file.metadata.end(), "{}: not a neutrino model file (no "
                    "'architecture' in the metadata)", path);
  try {
    model = model_from_json(found->second, path + ": architecture", &stored);
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
  NEUTRINO_CHECK_IO(model.built(), "{}: the architecture has no input_shape", path);
  check_finite(file.tensors, path);
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

void save_weights(const std::string& path, const Model& model) { save_model(path, model); }

void load_weights(const std::string& path, Model& model) {
  const io::TensorFile file = read_file(path, kFormat);
  check_finite(file.tensors, path);
  try {
    model.load_state_dict(file.tensors);
  } catch (const Error& e) {
    throw IOError(fmt::format("{}: {}", path, e.what()));
  }
}

void save_checkpoint(const std::string& path, const Model& model, const TrainingState& state) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [key, t] : model.optimizer().state()) tensors[kOptimizerPrefix + key] = t;
  json history = json::object();
  for (const auto& [name, values] : state.history.history) history[name] = values;
  for (const auto& [key, named] : state.callback_tensors) {
    for (const auto& [name, t] : named) tensors[kCallbackPrefix + key + "/" + name] = t;
  }
  const json training{{"epochs_done", state.epochs_done},
                      {"shuffle_seed", std::to_string(state.shuffle_seed)},
                      {"rng_state", state.rng_state},
                      {"history", history},
                      {"callbacks", state.callback_states},
                      {"optimizer", model.optimizer().name()},
                      {"stopped", state.stopped}};
  write_file(path, model, model.info, tensors, {{"training_state", training.dump()}},
             kCheckpointFormat);
}

TrainingState load_checkpoint(const std::string& path, Model& model) {
  const io::TensorFile file = read_file(path, kCheckpointFormat);
  TrainingState state;
  try {
    state = parse_training_state(parse_metadata(file.metadata, "training_state", path),
                                 path + ": training_state");
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
  NEUTRINO_CHECK_IO(state.optimizer == model.optimizer().name(),
                    "{}: saved with optimizer {}, but the model is compiled with {}", path,
                    state.optimizer, model.optimizer().name());
  check_finite(file.tensors, path);
  for (const auto& [name, t] : tensors_under(file, kCallbackPrefix)) {
    const size_t slash = name.find('/');
    NEUTRINO_CHECK_IO(slash != std::string::npos, "{}: malformed callback tensor name '{}{}'", path,
                      kCallbackPrefix, name);
    state.callback_tensors[name.substr(0, slash)][name.substr(slash + 1)] = t;
  }
  try {
    model.load_state_dict(model_tensors(file));
    model.optimizer().load_state(tensors_under(file, kOptimizerPrefix));
  } catch (const IOError&) {
    throw;
  } catch (const Error& e) {
    throw IOError(fmt::format("{}: {}", path, e.what()));
  }
  model.info = info_from(file, path);
  return state;
}

}  // namespace neutrino::train
