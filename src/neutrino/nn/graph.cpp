#include "neutrino/nn/graph.h"

#include <unordered_set>

#include "neutrino/core/precision.h"

namespace neutrino::nn {

namespace {
// Under bf16 compute precision, activations stay bfloat16 across runs of layers with bf16 kernels
// (the start of a convolutional stack): half the bytes through memory for every conv, pool and
// relu. This casts `h` for `layer`: to bf16 before a layer that computes in it, back to float32
// before one that has no bf16 kernels (a Dense reads bf16 itself and returns float32).
Tensor cast_for_layer(const Layer& layer, const Tensor& h) {
  using Use = Layer::Bf16Use;
  const Use use = layer.bf16_use();
  if (h.dtype() == DType::kBFloat16 && use == Use::kNo) return cast(h, DType::kFloat32);
  if (h.dtype() == DType::kFloat32 && use == Use::kComputes &&
      compute_precision() == Precision::kBFloat16) {
    return cast(h, DType::kBFloat16);
  }
  return h;
}

Tensor as_float32(const Tensor& h) {
  return h.dtype() == DType::kBFloat16 ? cast(h, DType::kFloat32) : h;
}

Shape per_sample(const Tensor& x, const std::string& what) {
  NEUTRINO_CHECK_SHAPE(x.dim() >= 1, "{}: input must have a batch dim, got a scalar", what);
  return Shape(x.shape().begin() + 1, x.shape().end());
}
}  // namespace

std::string snake_case(const std::string& type) {
  std::string out;
  for (size_t i = 0; i < type.size(); ++i) {
    const char c = type[i];
    const bool upper = c >= 'A' && c <= 'Z';
    // A capital starts a word unless it follows a capital or digit and precedes one ("Conv2D").
    if (upper && i > 0) {
      const char prev = type[i - 1];
      const bool prev_lower = prev >= 'a' && prev <= 'z';
      const bool next_lower = i + 1 < type.size() && type[i + 1] >= 'a' && type[i + 1] <= 'z';
      if (prev_lower || (next_lower && !(prev >= '0' && prev <= '9'))) out += '_';
    }
    out += upper ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

// ---- the functional API ---------------------------------------------------------------------

const Shape& SymbolicTensor::shape() const { return node_->shape; }

SymbolicTensor Input(Shape shape, std::string name) {
  NEUTRINO_CHECK_SHAPE(!shape.empty(), "Input: give the per-sample shape (without the batch dim)");
  for (int64_t d : shape) {
    NEUTRINO_CHECK_SHAPE(d > 0 && d <= kMaxLayerElements, "Input: shape {} must have dims in "
                         "[1, {}]", shape_str(shape), kMaxLayerElements);
  }
  return SymbolicTensor(std::make_shared<SymbolicNode>(
      SymbolicNode{.layer = nullptr, .inputs = {}, .shape = std::move(shape), .name = std::move(name)}));
}

SymbolicTensor Layer::operator()(const SymbolicTensor& input) {
  return (*this)(std::vector<SymbolicTensor>{input});
}

SymbolicTensor Layer::operator()(const std::vector<SymbolicTensor>& inputs) {
  LayerPtr self = weak_from_this().lock();
  if (!self) self = clone();
  std::vector<Shape> shapes;
  for (const SymbolicTensor& in : inputs) shapes.push_back(in.shape());
  // Keras builds a layer when it is first called on symbolic inputs: the weights exist (and the
  // shapes are checked) as the model is written down.
  self->build_for(shapes);
  Shape out = self->output_shape_for(shapes);
  return SymbolicTensor(std::make_shared<SymbolicNode>(
      SymbolicNode{.layer = std::move(self), .inputs = inputs, .shape = std::move(out), .name = ""}));
}

Graph::Graph(const std::vector<SymbolicTensor>& inputs, const std::vector<SymbolicTensor>& outputs) {
  NEUTRINO_CHECK_VALUE(!inputs.empty() && !outputs.empty(), "Model: give at least one input and "
                       "one output");
  std::unordered_map<const SymbolicNode*, int> ids;
  for (const SymbolicTensor& in : inputs) {
    NEUTRINO_CHECK_VALUE(in.node()->layer == nullptr, "Model: the inputs must be Input() tensors, "
                         "not outputs of layer '{}'", in.node()->layer ? in.node()->layer->name() : "");
    NEUTRINO_CHECK_VALUE(ids.count(in.node().get()) == 0, "Model: an input is listed twice");
    ids[in.node().get()] = add_input(in.node()->name, in.shape());
  }
  // Depth-first from the outputs, with an explicit stack: a node is added after all its inputs.
  for (const SymbolicTensor& out : outputs) {
    std::vector<std::pair<const SymbolicNode*, size_t>> stack{{out.node().get(), 0}};
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (ids.count(node) > 0) {
        stack.pop_back();
        continue;
      }
      NEUTRINO_CHECK_VALUE(node->layer != nullptr, "Model: an output depends on Input '{}', which "
                           "is not among the model's inputs", node->name.empty() ? "(unnamed)" : node->name);
      if (next < node->inputs.size()) {
        stack.emplace_back(node->inputs[next++].node().get(), 0);
        continue;
      }
      std::vector<int> args;
      for (const SymbolicTensor& in : node->inputs) args.push_back(ids.at(in.node().get()));
      ids[node] = add_layer(node->layer, std::move(args));
      stack.pop_back();
    }
  }
  std::vector<int> out_ids;
  for (const SymbolicTensor& out : outputs) out_ids.push_back(ids.at(out.node().get()));
  set_outputs(std::move(out_ids));
  build(input_shapes());
}

// ---- building the graph ---------------------------------------------------------------------

std::string Graph::unique_name(const std::string& base) {
  // "dense", then "dense_1", "dense_2", ... skipping names already in use. Names are never
  // removed, so the first free suffix only grows: each base resumes where it stopped.
  int64_t& suffix = next_suffix_[base];
  std::string name = suffix == 0 ? base : fmt::format("{}_{}", base, suffix);
  while (names_.count(name) > 0) name = fmt::format("{}_{}", base, ++suffix);
  return name;
}

int Graph::add_input(std::string name, Shape shape) {
  NEUTRINO_CHECK_VALUE(inputs_.size() < kMaxInputs, "Model: more than {} inputs", kMaxInputs);
  if (name.empty()) name = unique_name("input");
  NEUTRINO_CHECK_VALUE(names_.count(name) == 0, "Model: two nodes are named '{}'", name);
  const int id = static_cast<int>(nodes_.size());
  nodes_.push_back({.layer = nullptr, .inputs = {}, .name = name});
  names_[name] = id;
  uses_.push_back(0);
  inputs_.push_back(id);
  declared_.push_back(std::move(shape));
  return id;
}

int Graph::add_layer(const LayerPtr& layer, std::vector<int> inputs) {
  NEUTRINO_CHECK_VALUE(layer != nullptr, "Model: null layer");
  NEUTRINO_CHECK_VALUE(nodes_.size() - inputs_.size() < kMaxNodes, "Model: more than {} layers",
                       kMaxNodes);
  layer->check_input_count(inputs.size());
  for (int in : inputs) {
    NEUTRINO_CHECK_VALUE(in >= 0 && static_cast<size_t>(in) < nodes_.size(),
                         "Model: layer '{}' takes node {}, which does not exist yet", layer->name(), in);
  }
  if (layer_index_.count(layer.get()) == 0) {
    if (layer->name().empty()) layer->set_name(unique_name(snake_case(layer->type_name())));
    NEUTRINO_CHECK_VALUE(names_.count(layer->name()) == 0, "Model: two layers are named '{}'",
                         layer->name());
    NEUTRINO_CHECK_VALUE(layer->name().find('.') == std::string::npos,
                         "Model: layer name '{}' must not contain '.'", layer->name());
    names_[layer->name()] = static_cast<int>(nodes_.size());
    layer_index_[layer.get()] = static_cast<int>(layers_.size());
    layers_.push_back(layer);
    register_module(layer->name(), layer);
  }
  for (int in : inputs) ++uses_[static_cast<size_t>(in)];
  nodes_.push_back({.layer = layer, .inputs = std::move(inputs), .name = layer->name()});
  uses_.push_back(0);
  return static_cast<int>(nodes_.size()) - 1;
}

void Graph::set_outputs(std::vector<int> outputs) {
  for (int o : outputs_) --uses_[static_cast<size_t>(o)];
  for (int o : outputs) {
    NEUTRINO_CHECK_VALUE(o >= 0 && static_cast<size_t>(o) < nodes_.size(), "Model: output node "
                         "{} does not exist", o);
    ++uses_[static_cast<size_t>(o)];
  }
  outputs_ = std::move(outputs);
}

int Graph::find(const std::string& name) const {
  auto it = names_.find(name);
  return it == names_.end() ? -1 : it->second;
}

bool Graph::is_chain() const {
  if (inputs_.size() != 1 || inputs_[0] != 0 || nodes_.size() < 2) return false;
  if (outputs_.size() != 1 || outputs_[0] != static_cast<int>(nodes_.size()) - 1) return false;
  if (layers_.size() != nodes_.size() - 1) return false;  // a layer called twice
  for (size_t i = 1; i < nodes_.size(); ++i) {
    if (nodes_[i].inputs != std::vector<int>{static_cast<int>(i) - 1}) return false;
  }
  return true;
}

std::vector<Shape> Graph::input_shapes() const { return declared_; }

bool Graph::built() const {
  return !layers_.empty() && shapes_.size() == nodes_.size();
}

Shape Graph::plan_node(size_t i, const std::vector<Shape>& shapes) const {
  std::vector<Shape> args;
  for (int in : nodes_[i].inputs) args.push_back(shapes[static_cast<size_t>(in)]);
  return nodes_[i].layer->plan_for(args);
}

void Graph::build(const std::vector<Shape>& input_shapes) {
  NEUTRINO_CHECK_VALUE(input_shapes.size() == inputs_.size(), "Model: build needs {} input "
                       "shapes, got {}", inputs_.size(), input_shapes.size());
  declared_ = input_shapes;
  shapes_.clear();
  build_new_nodes();
}

void Graph::build_new_nodes() {
  size_t next_input = 0;
  for (size_t i = 0; i < shapes_.size(); ++i) next_input += nodes_[i].layer ? 0 : 1;
  for (size_t i = shapes_.size(); i < nodes_.size(); ++i) {
    if (!nodes_[i].layer) {
      const Shape& shape = declared_.at(next_input++);
      if (shape.empty()) return;  // not known yet
      shapes_.push_back(shape);
      continue;
    }
    std::vector<Shape> args;
    for (int in : nodes_[i].inputs) args.push_back(shapes_[static_cast<size_t>(in)]);
    nodes_[i].layer->build_for(args);
    shapes_.push_back(nodes_[i].layer->output_shape_for(args));
  }
}

std::map<std::string, Shape> Graph::planned_state(const std::vector<Shape>& input_shapes) const {
  NEUTRINO_CHECK_VALUE(input_shapes.size() == inputs_.size(), "Model: {} input shapes for {} "
                       "inputs", input_shapes.size(), inputs_.size());
  std::map<std::string, Shape> out;
  std::vector<Shape> shapes;
  std::unordered_set<const Layer*> seen;
  size_t next_input = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i].layer) {
      shapes.push_back(input_shapes[next_input++]);
      continue;
    }
    shapes.push_back(plan_node(i, shapes));
    const Layer& layer = *nodes_[i].layer;
    if (!seen.insert(&layer).second) continue;
    const Shape& first = shapes[static_cast<size_t>(nodes_[i].inputs.front())];
    for (auto& [name, weight] : layer.weight_shapes(first)) out[layer.name() + "." + name] = weight;
  }
  return out;
}

// ---- running it -----------------------------------------------------------------------------

std::vector<Tensor> Graph::forward_all(const std::vector<Tensor>& inputs, const NodeHook& hook) {
  NEUTRINO_CHECK_VALUE(!layers_.empty(), "Model: no layers");
  NEUTRINO_CHECK_VALUE(inputs.size() == inputs_.size(), "Model: takes {} input(s), got {}",
                       inputs_.size(), inputs.size());
  std::vector<Tensor> values(nodes_.size()), masks(nodes_.size());
  for (size_t k = 0; k < inputs.size(); ++k) values[static_cast<size_t>(inputs_[k])] = inputs[k];
  if (!built()) {
    std::vector<Shape> shapes;
    for (size_t k = 0; k < inputs.size(); ++k) shapes.push_back(per_sample(inputs[k], nodes_[inputs_[k]].name));
    build(shapes);
  }
  std::vector<int> remaining = uses_;
  // Each tensor is dropped after its last use, so inference holds only the live activations.
  auto release_inputs = [&](size_t i) {
    for (int in : nodes_[i].inputs) {
      if (--remaining[static_cast<size_t>(in)] == 0) {
        values[static_cast<size_t>(in)] = Tensor();
        masks[static_cast<size_t>(in)] = Tensor();
      }
    }
  };
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Layer* layer = nodes_[i].layer.get();
    if (layer == nullptr) continue;
    std::vector<Tensor> args;
    for (int in : nodes_[i].inputs) args.push_back(cast_for_layer(*layer, values[static_cast<size_t>(in)]));
    // A Conv2D(relu) whose only use is the MaxPooling2D after it runs with it as one op.
    if (!hook && i + 1 < nodes_.size() && nodes_[i + 1].layer &&
        nodes_[i + 1].inputs == std::vector<int>{static_cast<int>(i)} && uses_[i] == 1) {
      if (auto fused = fused_conv_relu_max_pool(*layer, *nodes_[i + 1].layer, args.front())) {
        release_inputs(i);
        values[i + 1] = std::move(*fused);
        ++i;
        continue;
      }
    }
    // A single-input layer gets its input's mask (Embedding(mask_zero) makes one) and passes on
    // its own; masks stop at layers with several inputs.
    const Tensor mask = args.size() == 1 ? masks[static_cast<size_t>(nodes_[i].inputs.front())] : Tensor();
    auto run = [&] { return args.size() == 1 ? layer->forward(args.front(), mask) : layer->forward(args); };
    values[i] = hook ? hook(i, run) : run();
    if (args.size() == 1) masks[i] = layer->compute_mask(args.front(), mask);
    release_inputs(i);
  }
  std::vector<Tensor> out;
  for (int o : outputs_) out.push_back(as_float32(values[static_cast<size_t>(o)]));
  return out;
}

Tensor Graph::forward(const std::vector<Tensor>& inputs) {
  NEUTRINO_CHECK_VALUE(outputs_.size() == 1, "Model: has {} outputs; use forward_all",
                       outputs_.size());
  return forward_all(inputs).front();
}

Tensor Graph::forward(const Tensor& x) { return forward(std::vector<Tensor>{x}); }

}  // namespace neutrino::nn
