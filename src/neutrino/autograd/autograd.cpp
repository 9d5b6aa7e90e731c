#include "neutrino/autograd/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "neutrino/ops/ops.h"

namespace neutrino {

namespace {
thread_local bool tls_grad_enabled = true;
}

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
      impl->grad = impl->grad ? add(Tensor(impl->grad), grad).impl() : grad.contiguous().impl();
      continue;
    }
    const Node& node = *impl->grad_fn;
    std::vector<Tensor> input_grads = node.apply(grad);
    for (size_t i = 0; i < input_grads.size(); ++i) {
      const Tensor& input = node.inputs()[i];
      if (!input_grads[i].defined() || !needs_grad(input)) continue;
      NEUTRINO_ASSERT(input_grads[i].shape() == input.shape());
      Tensor& slot = pending[input.impl().get()];
      slot = slot.defined() ? add(slot, input_grads[i]) : input_grads[i];
    }
    if (!retain_graph) impl->grad_fn->release();
  }
}

}  // namespace neutrino
