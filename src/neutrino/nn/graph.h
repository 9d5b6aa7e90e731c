// Models as graphs of layers. The functional API (Keras) records layer calls on symbolic tensors:
//
//   auto in = nn::Input({1, 28, 28});
//   auto h = nn::Conv2D(16, 3, {.padding = "same", .activation = "relu"})(in);
//   auto y = nn::Add()({nn::Conv2D(16, 3, {.padding = "same"})(h), h});
//   train::Model model(in, y);        // train::Model turns the calls into an nn::Graph
//
// A Graph runs its nodes in order (each node's inputs come before it), so a chain of layers
// (Sequential) is the graph where every layer takes the one before.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "neutrino/nn/layers.h"

namespace neutrino::nn {

struct SymbolicNode;

// What Input() and a layer called on symbolic inputs return (Keras's KerasTensor): a record of
// the call and the per-sample shape it gives, without values.
class SymbolicTensor {
 public:
  explicit SymbolicTensor(std::shared_ptr<const SymbolicNode> node) : node_(std::move(node)) {}
  const Shape& shape() const;
  const std::shared_ptr<const SymbolicNode>& node() const { return node_; }

 private:
  std::shared_ptr<const SymbolicNode> node_;
};

struct SymbolicNode {
  LayerPtr layer;  // null for an Input
  std::vector<SymbolicTensor> inputs;
  Shape shape;       // per sample, without the batch dim
  std::string name;  // an Input's name
};

// A model input of this per-sample shape (without the batch dim).
SymbolicTensor Input(Shape shape, std::string name = "");

class Graph : public Module {
 public:
  // The most layer calls and inputs a graph may have (a model file or config with more is
  // refused).
  static constexpr size_t kMaxNodes = 10000;
  static constexpr size_t kMaxInputs = 1000;

  struct Node {
    LayerPtr layer;           // null: a model input
    std::vector<int> inputs;  // earlier nodes
    std::string name;         // the input's name, or the layer's
  };

  Graph() = default;
  // Every layer call between `inputs` and `outputs`; an output that needs an Input not listed is
  // an error naming it.
  Graph(const std::vector<SymbolicTensor>& inputs, const std::vector<SymbolicTensor>& outputs);

  // A model input; an empty shape is set later by build().
  int add_input(std::string name, Shape shape = {});
  // Adds a call of `layer` on earlier nodes. A layer without a name gets Keras's ("dense",
  // "dense_1", ...); a layer already in the graph is called again with the same weights.
  int add_layer(const LayerPtr& layer, std::vector<int> inputs);
  void set_outputs(std::vector<int> outputs);

  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int>& input_nodes() const { return inputs_; }
  const std::vector<int>& output_nodes() const { return outputs_; }
  // The node named `name` (an input's or a layer's), or -1.
  int find(const std::string& name) const;
  // The distinct layers, in the order they were added.
  const std::vector<LayerPtr>& layers() const { return layers_; }
  // One input, one output, and every layer taking the node before it: what Sequential builds.
  bool is_chain() const;
  // How many nodes take node i as an input (outputs count once more).
  int uses(int node) const { return uses_.at(static_cast<size_t>(node)); }

  // Builds every layer for these per-sample input shapes (one per input).
  void build(const std::vector<Shape>& input_shapes);
  // Builds the nodes added since the last build, whose inputs are built: adding a layer to a
  // built chain builds it in constant time.
  void build_new_nodes();
  bool built() const;
  // Per-sample input shapes: as declared or built (empty where unknown).
  std::vector<Shape> input_shapes() const;
  // Each node's per-sample output shape (built graphs only).
  const std::vector<Shape>& node_shapes() const { return shapes_; }
  // The state_dict's names and shapes that build(input_shapes) would create, every layer checked
  // against the size limits; allocates nothing.
  std::map<std::string, Shape> planned_state(const std::vector<Shape>& input_shapes) const;

  // Runs the graph; `hook`, when given, wraps each layer node's call (the profiler's timer).
  using NodeHook = std::function<Tensor(size_t node, const std::function<Tensor()>& run)>;
  std::vector<Tensor> forward_all(const std::vector<Tensor>& inputs, const NodeHook& hook = nullptr);
  Tensor forward(const Tensor& x) override;
  Tensor forward(const std::vector<Tensor>& inputs) override;

 private:
  // The shape node `i` gives for its inputs' shapes in `shapes`; checks the limits.
  Shape plan_node(size_t i, const std::vector<Shape>& shapes) const;
  std::string unique_name(const std::string& type);

  std::vector<Node> nodes_;
  std::vector<int> inputs_, outputs_;
  std::vector<int> uses_;
  std::vector<LayerPtr> layers_;
  std::unordered_map<const Layer*, int> layer_index_;
  std::unordered_map<std::string, int> names_;           // node names
  std::unordered_map<std::string, int64_t> next_suffix_;  // default names: the next _N to try
  std::vector<Shape> shapes_;  // per node, for the built prefix
  std::vector<Shape> declared_;  // per input node
};

// Keras's default layer name for a type: "Conv2D" -> "conv2d", "BatchNormalization" ->
// "batch_normalization".
std::string snake_case(const std::string& type);

}  // namespace neutrino::nn
