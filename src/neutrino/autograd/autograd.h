// Reverse-mode autodiff, define-by-run. Each differentiable op that sees an input needing a gradient
// records a Node on its output: the inputs, and a backward function that maps the output's gradient
// to one gradient per input, written in differentiable ops. Tensor::backward() walks the nodes in
// reverse topological order, summing gradients that meet at a tensor.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino {

class Node {
 public:
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;
  Node(const char* name, std::vector<Tensor> inputs, BackwardFn backward)
      : name_(name), inputs_(std::move(inputs)), backward_(std::move(backward)) {}

  const char* name() const { return name_; }
  const std::vector<Tensor>& inputs() const { return inputs_; }
  // Returns one gradient per input (undefined where the input needs none).
  std::vector<Tensor> apply(const Tensor& grad_output) const;
  void release() { backward_ = nullptr; }

 private:
  const char* name_;
  std::vector<Tensor> inputs_;
  BackwardFn backward_;
};

// Whether ops record the graph on this thread. Off inside NoGradGuard (inference, optimizer steps,
// backward itself). Thread-local, so several threads can run inference on one shared model at once.
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when an op with these inputs must record a node.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const Tensor& input);

// Attaches a node to `output` when grad mode is on and some input requires grad. Backward
// functions that need the output must capture output.detach() to avoid a reference cycle.
void record(Tensor& output, const char* name, std::vector<Tensor> inputs, Node::BackwardFn backward);

// Runs backward from `root` with the given seed gradient (ones for a single-element root).
void run_backward(const Tensor& root, const Tensor& seed, bool retain_graph);

}  // namespace neutrino
