#include "neutrino/autograd/autograd.h"

#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "neutrino/backend/kernels.h"

namespace neutrino {

namespace {
// a + b for two gradients of one tensor (same shape), into a new tensor: gradients are never
// written in place, so one that aliases another stays valid. Straight on the backend's kernel,
// since autograd sits below the ops.
Tensor accumulate(const Tensor& a, const Tensor& b) {
  NEUTRINO_ASSERT(a.shape() == b.shape());
  const Tensor x = densify(a);
  const Tensor y = densify(b, a.dtype());
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  auto run = [&]<class T>() {
    kernels::binary(kernels::Binary::kAdd, x.data<T>(), x.strides().data(), y.data<T>(),
                    y.strides().data(), out.data<T>(), x.shape());
  };
  if (x.dtype() == DType::kFloat64) {
    run.operator()<double>();
  } else {
    NEUTRINO_CHECK_VALUE(x.dtype() == DType::kFloat32, "backward: gradients of dtype {} cannot be "
                         "summed", dtype_name(x.dtype()));
    run.operator()<float>();
  }
  return out;
}
}  // namespace

namespace {
thread_local bool tls_grad_enabled = true;
thread_local int tls_profile_scope = -1;
thread_local BackwardProfile* tls_backward_profile = nullptr;
}  // namespace

int profile_scope() { return tls_profile_scope; }

ProfileScope::ProfileScope(int scope) : previous_(tls_profile_scope) { tls_profile_scope = scope; }
ProfileScope::~ProfileScope() { tls_profile_scope = previous_; }

void BackwardProfile::add(int scope, int64_t ns) {
  if (scope < 0) {
    unscoped_ns += ns;
    return;
  }
  const auto index = static_cast<size_t>(scope);
  if (index >= scope_ns.size()) scope_ns.resize(index + 1, 0);
  scope_ns[index] += ns;
}

BackwardProfileGuard::BackwardProfileGuard(BackwardProfile* sink)
    : previous_(tls_backward_profile) {
  tls_backward_profile = sink;
}
BackwardProfileGuard::~BackwardProfileGuard() { tls_backward_profile = previous_; }

bool grad_enabled() { return tls_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(tls_grad_enabled) { tls_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { tls_grad_enabled = previous_; }

bool needs_grad(const Tensor& input) { return input.defined() && input.requires_grad(); }

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!tls_grad_enabled) return false;
  for (const Tensor* t : inputs) {
    if (needs_grad(*t)) return true;
  }
  return false;
}

void record(Tensor& output, const char* name, std::vector<Tensor> inputs,
            Node::BackwardFn backward) {
  if (!tls_grad_enabled) return;
  bool any = false;
  for (const Tensor& t : inputs) any = any || needs_grad(t);
  if (!any) return;
  output.impl()->requires_grad = true;
  output.impl()->grad_fn = std::make_shared<Node>(name, std::move(inputs), std::move(backward));
}

std::vector<Tensor> Node::apply(const Tensor& grad_output) const {
  NEUTRINO_CHECK_VALUE(backward_ != nullptr,
                       "backward through {} a second time: its graph was freed; pass "
                       "retain_graph=true to the first backward()",
                       name_);
  std::vector<Tensor> grads = backward_(grad_output);
  NEUTRINO_ASSERT(grads.size() == inputs_.size());
  return grads;
}

void run_backward(const Tensor& root, const Tensor& seed, bool retain_graph) {
  NEUTRINO_CHECK_VALUE(root.requires_grad(),
                       "backward: the tensor does not require grad and has no grad_fn");
  // Reverse topological order by iterative depth-first search over the tensors with a grad_fn.
  std::vector<TensorImpl*> order;
  std::unordered_set<TensorImpl*> visited;
  std::vector<std::pair<TensorImpl*, size_t>> stack{{root.impl().get(), 0}};
  visited.insert(root.impl().get());
  while (!stack.empty()) {
    auto& [impl, next] = stack.back();
    const auto& fn = impl->grad_fn;
    if (fn && next < fn->inputs().size()) {
      TensorImpl* child = fn->inputs()[next++].impl().get();
      if (child != nullptr && child->requires_grad && visited.insert(child).second) {
        stack.emplace_back(child, 0);
      }
      continue;
    }
    order.push_back(impl);
    stack.pop_back();
  }

  NoGradGuard no_grad;
  using Clock = std::chrono::steady_clock;
  BackwardProfile* const profile = tls_backward_profile;
  std::unordered_map<TensorImpl*, Tensor> pending;
  pending[root.impl().get()] = seed;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TensorImpl* impl = *it;
    auto found = pending.find(impl);
    if (found == pending.end()) continue;
    Tensor grad = std::move(found->second);
    pending.erase(found);
    if (!impl->grad_fn) {
      // A leaf: accumulate into .grad, the way repeated backward() calls add up in PyTorch.
      // Gradients are never written in place, so an aliased gradient is safe to keep.
      impl->grad = impl->grad ? accumulate(Tensor(impl->grad), grad).impl() : densify(grad).impl();
      continue;
    }
    const Node& node = *impl->grad_fn;
    // The node's time includes summing its gradients into the pending ones: that work exists
    // because of this node's outputs.
    const Clock::time_point started = profile != nullptr ? Clock::now() : Clock::time_point{};
    std::vector<Tensor> input_grads = node.apply(grad);
    for (size_t i = 0; i < input_grads.size(); ++i) {
      const Tensor& input = node.inputs()[i];
      if (!input_grads[i].defined() || !needs_grad(input)) continue;
      NEUTRINO_ASSERT(input_grads[i].shape() == input.shape());
      Tensor& slot = pending[input.impl().get()];
      slot = slot.defined() ? accumulate(slot, input_grads[i]) : input_grads[i];
    }
    if (profile != nullptr) {
      const std::chrono::nanoseconds elapsed = Clock::now() - started;
      profile->add(node.profile_scope(), elapsed.count());
    }
    if (!retain_graph) impl->grad_fn->release();
  }
}

void backward(const Tensor& root, const Tensor& gradient, bool retain_graph) {
  Tensor seed = gradient;
  if (!seed.defined()) {
    NEUTRINO_CHECK_SHAPE(root.numel() == 1,
                         "backward: a tensor of shape {} needs an explicit gradient (only "
                         "single-element tensors get an implicit 1)",
                         root.shape_string());
    seed = Tensor::ones(root.shape(), root.dtype());
  }
  NEUTRINO_CHECK_SHAPE(seed.shape() == root.shape(),
                       "backward: gradient shape {} differs from tensor shape {}",
                       seed.shape_string(), root.shape_string());
  run_backward(root, seed, retain_graph);
}

}  // namespace neutrino
