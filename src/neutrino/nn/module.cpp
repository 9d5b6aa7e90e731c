#include "neutrino/nn/module.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

#include "neutrino/core/error.h"

namespace neutrino::nn {

namespace {
thread_local bool eval_mode_forced = false;
}  // namespace

EvalModeGuard::EvalModeGuard() : saved_(eval_mode_forced) { eval_mode_forced = true; }
EvalModeGuard::~EvalModeGuard() { eval_mode_forced = saved_; }
bool EvalModeGuard::active() { return eval_mode_forced; }

bool Module::is_training() const {
  return training_.load(std::memory_order_relaxed) && !eval_mode_forced;
}

Module::Module(const Module& other)
    : parameters_(other.parameters_),
      buffers_(other.buffers_),
      children_(other.children_),
      training_(other.is_training()) {}

Module& Module::operator=(const Module& other) {
  parameters_ = other.parameters_;
  buffers_ = other.buffers_;
  children_ = other.children_;
  training_ = other.is_training();
  return *this;
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors& out) const {
  for (const auto& [name, tensor] : parameters ? parameters_ : buffers_) {
    out.emplace_back(prefix + name, tensor);
  }
  for (const auto& [name, child] : children_) {
    child->collect(name.empty() ? prefix : prefix + name + ".", parameters, out);
  }
}

namespace {
// The module whose default forward is running on this thread: when the other default is then
// entered for the same module, neither overload was overridden.
thread_local const Module* defaulting_forward = nullptr;

class DefaultForwardScope {
 public:
  explicit DefaultForwardScope(const Module* module) : saved_(defaulting_forward) {
    NEUTRINO_CHECK_VALUE(defaulting_forward != module,
                         "Module: the class overrides neither forward(const Tensor&) nor "
                   "forward(const std::vector<Tensor>&)");
    defaulting_forward = module;
  }
  ~DefaultForwardScope() { defaulting_forward = saved_; }
  DefaultForwardScope(const DefaultForwardScope&) = delete;
  DefaultForwardScope& operator=(const DefaultForwardScope&) = delete;

 private:
  const Module* saved_;
};
}  // namespace

Tensor Module::forward(const Tensor& x) {
  DefaultForwardScope scope(this);
  return forward(std::vector<Tensor>{x});
}

Tensor Module::forward(const std::vector<Tensor>& inputs) {
  NEUTRINO_CHECK_VALUE(inputs.size() == 1, "Module: forward takes one input here, got {}",
                       inputs.size());
  DefaultForwardScope scope(this);
  return forward(inputs.front());
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out.push_back(tensor);
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out.emplace(name, tensor);
  for (auto& [name, tensor] : named_buffers()) out.emplace(name, tensor);
  return out;
}

namespace {
// "'a', 'b'" for an error message, at most kMaxListed names then a count, so a state dict of a
// whole other model does not make a message of thousands of lines.
std::string quoted_list(const std::vector<std::string>& names) {
  constexpr size_t kMaxListed = 20;
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxListed; ++i) {
    out += (i > 0 ? ", '" : "'") + names[i] + "'";
  }
  if (names.size() > kMaxListed) out += fmt::format(", ... ({} more)", names.size() - kMaxListed);
  return out;
}

std::string counted(size_t n, const char* what) {
  return fmt::format("{} {} tensor{}", n, what, n == 1 ? "" : "s");
}
}  // namespace

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::map<std::string, Tensor> own = state_dict();
  // A Keras-style model has no weights until it knows its input shape: loading into it would
  // report every tensor as unexpected, which hides the real fix.
  NEUTRINO_CHECK_VALUE(!own.empty() || state.empty(),
                       "load_state_dict: the model has no parameters yet, but the state holds {}: "
                       "build the model first (give the first layer an input_shape, or call "
                       "build(input_shape))",
                       counted(state.size(), "named"));
  // Every problem is found before anything is copied, and reported at once: a PyTorch state dict
  // with other names shows all of them, and a failed load leaves the model as it was.
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, target] : own) {
    auto found = state.find(name);
    if (found == state.end()) {
      missing.push_back(name);
    } else if (found->second.shape() != target.shape()) {
      mismatched.push_back(fmt::format("'{}' has shape {} in the file but {} in the model", name,
                                       found->second.shape_string(), target.shape_string()));
    }
  }
  for (const auto& [name, tensor] : state) {
    if (own.count(name) == 0 && !name.ends_with("num_batches_tracked")) unexpected.push_back(name);
  }
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::vector<std::string> parts;
    if (!missing.empty()) parts.push_back(counted(missing.size(), "missing") + ": " + quoted_list(missing));
    if (!unexpected.empty()) {
      parts.push_back(counted(unexpected.size(), "unexpected") + " (the model has no such parameter "
                      "or buffer): " + quoted_list(unexpected));
    }
    throw ValueError(fmt::format("load_state_dict: {}", fmt::join(parts, "; ")));
  }
  NEUTRINO_CHECK_SHAPE(mismatched.empty(), "load_state_dict: {}", fmt::join(mismatched, "; "));
  for (auto& [name, target] : own) {
    auto found = state.find(name);
    if (found != state.end()) target.copy_(found->second);
  }
}

void Module::train(bool on) {
  if (training_.exchange(on) == on && children_.empty()) return;
  for (auto& [name, child] : children_) child->train(on);
}

const Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  value.set_requires_grad(true);
  parameters_.emplace_back(name, std::move(value));
  return parameters_.back().second;
}

const Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, std::move(value));
  return buffers_.back().second;
}

void Module::register_module(const std::string& name, std::shared_ptr<Module> child) {
  children_.emplace_back(name, std::move(child));
}

void Module::clear_registrations() {
  parameters_.clear();
  buffers_.clear();
  children_.clear();
}

}  // namespace neutrino::nn
