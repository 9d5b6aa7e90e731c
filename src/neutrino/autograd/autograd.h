// Reverse-mode autodiff, define-by-run. Each differentiable op that sees an input needing a gradient
// records a Node on its output: the inputs, and a backward function that maps the output's gradient
// to one gradient per input, written in differentiable ops. backward() walks the nodes in
// reverse topological order, summing gradients that meet at a tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino {

// Profiling (`neutrino train --profile`). A node remembers the profile scope that was current on
// its thread when the op made it; while a BackwardProfile is installed, run_backward adds each
// node's backward time to its scope's bucket. Scopes are plain ints (Sequential uses the layer
// index) so that autograd knows nothing about layers. -1: no scope.
int profile_scope();

// Sets the profile scope for the ops run on this thread while it lives.
class ProfileScope {
 public:
  explicit ProfileScope(int scope);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  int previous_;
};

// Backward time in nanoseconds, by the scope of the node that ran.
struct BackwardProfile {
  std::vector<int64_t> scope_ns;  // indexed by scope id; grows as needed
  int64_t unscoped_ns = 0;        // nodes made outside any scope (the loss, for Sequential)
  void add(int scope, int64_t ns);
};

// Installs `sink` for the backward passes run on this thread while it lives (nullptr: none).
class BackwardProfileGuard {
 public:
  explicit BackwardProfileGuard(BackwardProfile* sink);
  ~BackwardProfileGuard();
  BackwardProfileGuard(const BackwardProfileGuard&) = delete;
  BackwardProfileGuard& operator=(const BackwardProfileGuard&) = delete;

 private:
  BackwardProfile* previous_;
};

class Node {
 public:
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;
  Node(const char* name, std::vector<Tensor> inputs, BackwardFn backward)
      : name_(name), inputs_(std::move(inputs)), backward_(std::move(backward)) {}

  const char* name() const { return name_; }
  const std::vector<Tensor>& inputs() const { return inputs_; }
  int profile_scope() const { return profile_scope_; }
  // Returns one gradient per input (undefined where the input needs none).
  std::vector<Tensor> apply(const Tensor& grad_output) const;
  void release() { backward_ = nullptr; }

 private:
  const char* name_;
  std::vector<Tensor> inputs_;
  BackwardFn backward_;
  // Read at construction: one thread-local load, so nodes cost the same when nobody profiles.
  int profile_scope_ = neutrino::profile_scope();
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

// Reverse-mode autodiff from `root` (torch.autograd.backward): adds d root / d leaf, weighted by
// `gradient`, into every leaf's grad(). Without `gradient`, root must hold a single element.
// With retain_graph the graph can be walked again.
void backward(const Tensor& root, const Tensor& gradient = Tensor(), bool retain_graph = false);
// backward's walk, with the seed gradient already checked.
void run_backward(const Tensor& root, const Tensor& seed, bool retain_graph);

}  // namespace neutrino
