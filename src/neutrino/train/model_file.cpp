#include "neutrino/train/model_file.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "neutrino/io/config_reader.h"
#include "neutrino/nn/layer_config.h"

namespace neutrino::train {

using nlohmann::json;

namespace {
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
// builds it (allocates and initializes the weights) unless `build` is false.
void plan_and_build(Model& model, const std::vector<Shape>& shapes, const std::string& path,
                    const std::map<std::string, Shape>* stored_shapes, bool build) {
  try {
    const std::map<std::string, Shape> planned = model.planned_state(shapes);
    if (stored_shapes != nullptr) check_stored_shapes(planned, *stored_shapes, path);
  } catch (const ShapeError& e) {
    const std::string what = e.what();
    throw ValueError(what.starts_with(path) ? what : fmt::format("{}: {}", path, what));
  }
  if (build) model.build_inputs(shapes);
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

namespace {
// A config's layers, each with the names in its `inputs`, which belong to the graph rather than
// to the layer's options.
struct ConfigLayers {
  std::vector<nn::LayerPtr> layers;
  std::vector<std::optional<std::vector<std::string>>> inputs;
  std::vector<std::string> input_fields;  // "path.layers[i].Type.inputs", for errors
};

ConfigLayers read_layers(const json& layers, const std::string& path) {
  ConfigLayers out;
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
    out.layers.push_back(nn::layer_from_config(entry, where));
    out.input_fields.push_back(fmt::format("{}.{}.inputs", where, out.layers.back()->type_name()));
    out.inputs.push_back(std::move(names));
  }
  return out;
}

// The graph's inputs: the config's `inputs` list, or one input "input" of `shape`.
std::vector<Shape> add_graph_inputs(io::ConfigReader& r, nn::Graph& graph, const Shape& shape) {
  if (!r.has("inputs")) {
    graph.add_input("input");
    return {shape};
  }
  const json& inputs = r.get_raw("inputs");
  NEUTRINO_CHECK_VALUE(inputs.is_array() && !inputs.empty(), "{}.inputs: expected a non-empty "
                       "list of {{name, shape}}", r.path());
  std::vector<Shape> shapes;
  for (size_t k = 0; k < inputs.size(); ++k) {
    io::ConfigReader in(inputs[k], fmt::format("{}.inputs[{}]", r.path(), k));
    graph.add_input(in.require_string("name"));
    const std::vector<int64_t> dims = in.get_ints("shape", {}, 1, nn::kMaxLayerElements);
    shapes.emplace_back(dims.begin(), dims.end());
    in.finish();
  }
  return shapes;
}

Model graph_model(io::ConfigReader& r, const ConfigLayers& layers, const Shape& shape,
                  const std::string& name, const std::map<std::string, Shape>* stored_shapes,
                  bool build) {
  const std::string& path = r.path();
  auto graph = std::make_shared<nn::Graph>();
  const std::vector<Shape> shapes = add_graph_inputs(r, *graph, shape);
  for (size_t i = 0; i < layers.layers.size(); ++i) {
    std::vector<int> args;
    if (layers.inputs[i]) {
      for (const auto& n : *layers.inputs[i]) {
        args.push_back(node_named(*graph, n, layers.input_fields[i]));
      }
    } else {
      args.push_back(static_cast<int>(graph->nodes().size()) - 1);  // the layer above
    }
    try {
      graph->add_layer(layers.layers[i], args);
    } catch (const ValueError& e) {
      throw ValueError(fmt::format("{}.layers[{}]: {}", path, i, e.what()));
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
  if (known) plan_and_build(model, shapes, path, stored_shapes, build);
  return model;
}

Model model_from_config(const std::string& text, const std::string& path,
                        const std::map<std::string, Shape>* stored_shapes, bool build) {
  io::ConfigReader r(io::parse_json(text, path), path);
  const std::string class_name = r.get_string("class_name", "Sequential");
  NEUTRINO_CHECK_VALUE(class_name != "Subclassed", "{}: saved from a subclassed model (a C++ "
                       "class): construct it in C++ and load the weights with load_weights()", path);
  NEUTRINO_CHECK_VALUE(class_name != "GPT", "{}: a language model (GPT): use generate, or "
                       "predict with token ids; in C++ load_language_model()", path);
  NEUTRINO_CHECK_VALUE(class_name == "Sequential" || class_name == "Functional",
                       "{}.class_name: expected Sequential or Functional, got '{}'", path, class_name);
  const std::string name = r.get_string("name", class_name == "Sequential" ? "sequential" : "model");
  const std::vector<int64_t> input_shape =
      r.get_ints("input_shape", {}, 1, nn::kMaxLayerElements);
  const json& layer_list = r.require_raw("layers");
  NEUTRINO_CHECK_VALUE(layer_list.is_array() && !layer_list.empty(),
                       "{}.layers: expected a non-empty list", path);
  NEUTRINO_CHECK_VALUE(layer_list.size() <= Model::kMaxLayers,
                       "{}.layers: {} layers, more than the limit of {}", path, layer_list.size(),
                       Model::kMaxLayers);
  const ConfigLayers layers = read_layers(layer_list, path);
  const bool graph_mode = class_name == "Functional" || r.has("inputs") || r.has("outputs") ||
                          std::any_of(layers.inputs.begin(), layers.inputs.end(),
                                      [](const auto& n) { return n.has_value(); });
  // The first layer's own input_shape wins over the model's, as when layers are added one by one.
  const Shape& declared = layers.layers.front()->declared_input_shape();
  const Shape shape = declared.empty() ? Shape(input_shape.begin(), input_shape.end()) : declared;
  if (graph_mode) return graph_model(r, layers, shape, name, stored_shapes, build);
  r.finish();
  Sequential model({}, name);
  for (const auto& layer : layers.layers) model.add(layer, /*build=*/false);
  if (!shape.empty()) plan_and_build(model, {shape}, path, stored_shapes, build);
  return model;
}
}  // namespace

Model model_from_json(const std::string& text, const std::string& path,
                      const std::map<std::string, Shape>* stored_shapes) {
  return model_from_config(text, path, stored_shapes, /*build=*/true);
}

void check_model_json(const std::string& text, const std::string& path) {
  model_from_config(text, path, nullptr, /*build=*/false);
}

namespace {
// Loads weights into `model`; a mismatch is an IOError naming the file.
void load_state(Model& model, const std::map<std::string, Tensor>& weights, const std::string& path) {
  try {
    model.load_state_dict(weights);
  } catch (const Error& e) {
    throw IOError(fmt::format("{}: {}", path, e.what()));
  }
}

io::ModelFile file_of(const Model& model, const ModelInfo& info) {
  NEUTRINO_CHECK_VALUE(model.built(), "save: the model is not built (no weights to save)");
  return {.architecture = model_to_json(model),
          .mixed_precision = model.mixed_precision_policy(),
          .info = info,
          .weights = model.state_dict()};
}
}  // namespace

void save_model(const std::string& path, const Model& model, const ModelInfo& info) {
  io::write_model_file(path, file_of(model, info), io::ModelFileKind::kModel);
}

LoadedModel load_model(const std::string& path) {
  io::ModelFile file = io::read_model_file(path, io::ModelFileKind::kModel);
  std::map<std::string, Shape> stored;
  for (const auto& [name, t] : file.weights) stored.emplace(name, t.shape());
  Model model = Sequential();
  try {
    model = model_from_json(file.architecture, path + ": architecture", &stored);
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
  NEUTRINO_CHECK_IO(model.built(), "{}: the architecture has no input_shape", path);
  load_state(model, file.weights, path);
  model.set_mixed_precision(file.mixed_precision);
  model.eval();
  return {std::move(model), std::move(file.info)};
}

void save_weights(const std::string& path, const Model& model) { save_model(path, model); }

void load_weights(const std::string& path, Model& model) {
  load_state(model, io::read_model_file(path, io::ModelFileKind::kModel).weights, path);
}

void save_checkpoint(const std::string& path, const Model& model, const TrainingState& state,
                     const ModelInfo& info) {
  io::ModelFile file = file_of(model, info);
  file.training = state;
  file.training.optimizer = model.optimizer().name();
  file.optimizer_state = model.optimizer().state();
  io::write_model_file(path, file, io::ModelFileKind::kCheckpoint);
}

LoadedCheckpoint load_checkpoint(const std::string& path, Model& model) {
  io::ModelFile file = io::read_model_file(path, io::ModelFileKind::kCheckpoint);
  NEUTRINO_CHECK_IO(file.training.optimizer == model.optimizer().name(),
                    "{}: saved with optimizer {}, but the model is compiled with {}", path,
                    file.training.optimizer, model.optimizer().name());
  load_state(model, file.weights, path);
  try {
    model.optimizer().load_state(file.optimizer_state);
  } catch (const IOError&) {
    throw;
  } catch (const Error& e) {
    throw IOError(fmt::format("{}: {}", path, e.what()));
  }
  return {std::move(file.training), std::move(file.info)};
}

}  // namespace neutrino::train
