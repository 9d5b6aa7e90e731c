// relu's one rule, private to backend/. Every kernel that applies relu or its backward uses it:
// kernels::unary (kRelu), the bfloat16 relu, relu_backward, Dense's few-rows path, the
// channels-last 2x2 pool with relu, and the fused first layer (on its vector type). Only oneDNN's
// own post-op (eltwise_relu, fused into its convolutions and matmuls) is oneDNN's code.
#pragma once

namespace neutrino::kernels {

// y = x where x > 0, else 0 (NaN becomes 0). Works on scalars and on GCC vector types.
template <class V>
inline auto relu_passes(V x) {
  return x > V{};
}
template <class V>
inline V relu_of(V x) {
  return relu_passes(x) ? x : V{};
}
// The backward: grad_x = grad_y where the output y > 0, else 0.
template <class V, class G>
inline G relu_grad(V y, G grad_y) {
  return relu_passes(y) ? grad_y : G{};
}

}  // namespace neutrino::kernels
