// Module: a plain class owning named parameters, buffers and child modules, with PyTorch's naming
// (child.param, e.g. "fc1.weight") so state dicts exchange with PyTorch.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Evaluation mode on this thread for the guard's lifetime, whatever the modules' training flags:
// predict() and evaluate() run so, and a model that another thread trains keeps its flag.
class EvalModeGuard {
 public:
  EvalModeGuard();
  ~EvalModeGuard();
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;
  static bool active();

 private:
  bool saved_;
};

class Module {
 public:
  Module() = default;
  Module(const Module& other);
  Module& operator=(const Module& other);
  virtual ~Module() = default;
  // One input, or several (forward({x, mask})), giving one output. A module overrides either
  // (each default calls the other); a class that overrides one and calls the other on itself
  // adds `using Module::forward;`.
  virtual Tensor forward(const Tensor& x);
  virtual Tensor forward(const std::vector<Tensor>& inputs);
  Tensor operator()(const Tensor& x) { return forward(x); }
  Tensor operator()(const std::vector<Tensor>& inputs) { return forward(inputs); }

  NamedTensors named_parameters() const;  // recursive, "child.name"
  NamedTensors named_buffers() const;     // running statistics and other non-trained state
  std::vector<Tensor> parameters() const;
  // Parameters and buffers by name (what PyTorch's state_dict() holds).
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in by name; with strict, missing or unexpected names are an error that lists
  // them all. Shapes must match exactly; the error names each tensor and both shapes. Nothing is
  // copied unless everything fits. An unbuilt module (no parameters yet) given a non-empty state
  // is an error that says to build it first.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // The registered child modules, by name.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

  virtual void train(bool on = true);
  void eval() { train(false); }
  // False under an EvalModeGuard on this thread, whatever the flag.
  bool is_training() const;

 protected:
  const Tensor& register_parameter(const std::string& name, Tensor value);
  const Tensor& register_buffer(const std::string& name, Tensor value);
  // A child with an empty name adds its tensors under their own names (no "name." prefix).
  void register_module(const std::string& name, std::shared_ptr<Module> child);
  void clear_registrations();

 private:
  void collect(const std::string& prefix, bool parameters, NamedTensors& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  // Atomic: predict() on a shared model from several threads sets evaluation mode concurrently.
  std::atomic<bool> training_ = true;
};

}  // namespace neutrino::nn
