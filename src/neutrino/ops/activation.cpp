// Activations: relu (and the layout-keeping relu and relu backward the fused paths use),
// leaky_relu, sigmoid, tanh, softplus, silu, gelu. Each maps any shape to the same shape,
// elementwise; the math of relu itself is in one place, backend/relu.h.
#include <cmath>

#include "neutrino/backend/kernels.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using kernels::Unary;

namespace detail {

// g * [y > 0], kept in g's layout when g and y share a dense one (channels-last conv outputs),
// so that the conv backward reads it without a reorder.
Tensor relu_backward(const Tensor& g, const Tensor& y) {
  const bool same_layout = g.dtype() == y.dtype() && g.shape() == y.shape() &&
                           g.strides() == y.strides() && (g.is_contiguous() || is_channels_last(g));
  if (!same_layout) {
    if (g.dtype() == DType::kBFloat16 || y.dtype() == DType::kBFloat16) {
      // to() makes both contiguous, so this comes back through the kernel below.
      return cast(relu_backward(cast(g, DType::kFloat32), cast(y, DType::kFloat32)), g.dtype());
    }
    return mul(g, apply_unary(y, static_cast<int>(Unary::kStep), "relu"));
  }
  Tensor out = empty_same_layout(g);
  if (g.dtype() == DType::kBFloat16) {
    kernels::relu_backward(g.data<bfloat16>(), y.data<bfloat16>(), out.data<bfloat16>(), g.numel());
    return out;
  }
  dispatch_float(g.dtype(), "relu", [&]<class T>() {
    kernels::relu_backward(g.data<T>(), y.data<T>(), out.data<T>(), g.numel());
  });
  return out;
}

// relu in x's own dense layout (a channels-last pool output stays channels-last for the next
// convolution), float32, float64 or bfloat16.
Tensor relu_same_layout(const Tensor& x) {
  const Tensor xd = dense_nchw_or_nhwc(x);
  Tensor out = empty_same_layout(xd);
  if (x.dtype() == DType::kBFloat16) {
    kernels::relu(xd.data<bfloat16>(), out.data<bfloat16>(), x.numel());
  } else {
    dispatch_float(x.dtype(), "relu", [&]<class T>() {
      kernels::unary(Unary::kRelu, xd.data<T>(), out.data<T>(), x.numel(), 0, 0);
    });
  }
  if (!any_requires_grad({&x})) return out;
  record(out, "relu", {x}, [y = out.detach()](const Tensor& g) {
    return std::vector<Tensor>{relu_backward(g, y)};
  });
  return out;
}

}  // namespace detail

using namespace detail;

// relu(x) = max(x, 0), any shape to the same shape (and layout); d relu(x) = [x > 0], given as
// g * [y > 0] from the output y.
Tensor relu(const Tensor& x) {
  check_float(x, "relu");
  return relu_same_layout(x);
}

// leaky_relu(x) = x > 0 ? x : slope * x; d = x > 0 ? 1 : slope.
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return unary_op(
      x, Unary::kLeakyRelu, "leaky_relu",
      [negative_slope](const Tensor& in, const Tensor&) {
        return apply_unary(in, static_cast<int>(Unary::kStep), "leaky_relu", 0.0, negative_slope);
      },
      negative_slope);
}

// d sigmoid(x) = y (1 - y)
Tensor sigmoid(const Tensor& x) {
  return unary_op(x, Unary::kSigmoid, "sigmoid",
                  [](const Tensor&, const Tensor& y) { return mul(y, rsub(1.0, y)); });
}

// d tanh(x) = 1 - y^2
Tensor tanh(const Tensor& x) {
  return unary_op(x, Unary::kTanh, "tanh",
                  [](const Tensor&, const Tensor& y) { return rsub(1.0, mul(y, y)); });
}

// d softplus(x) = sigmoid(x)
Tensor softplus(const Tensor& x) {
  return unary_op(x, Unary::kSoftplus, "softplus",
                  [](const Tensor& in, const Tensor&) { return sigmoid(in); });
}

// silu(x) = x sigmoid(x), any shape to the same shape;
// d silu(x) = s + x s (1 - s) = s (1 + x (1 - s)) with s = sigmoid(x).
Tensor silu(const Tensor& x) {
  return unary_op(x, Unary::kSilu, "silu", [](const Tensor& in, const Tensor&) {
    const Tensor s = sigmoid(in);
    return mul(s, add(mul(in, rsub(1.0, s)), 1.0));
  });
}

// gelu(x) = x Phi(x) (exact) or 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), any shape to the
// same shape; the backward is one fused pass, dx = g * gelu'(x) (not differentiable again).
Tensor gelu(const Tensor& x, const std::string& approximate) {
  NEUTRINO_CHECK_VALUE(approximate == "none" || approximate == "tanh",
                       "gelu: approximate must be 'none' or 'tanh', got '{}'", approximate);
  const bool exact = approximate == "none";
  Tensor out = apply_unary(x, static_cast<int>(exact ? Unary::kGeluErf : Unary::kGeluTanh), "gelu");
  if (!any_requires_grad({&x})) return out;
  record(out, "gelu", {x}, [x, exact](const Tensor& g) {
    const Tensor xc = materialize(x);
    const Tensor gc = materialize(g.dtype() == x.dtype() ? g : cast(g, x.dtype()));
    NEUTRINO_ASSERT(gc.shape() == xc.shape());
    Tensor dx = Tensor::empty(x.shape(), x.dtype());
    dispatch_float(x.dtype(), "gelu", [&]<class T>() {
      kernels::gelu_backward(exact, xc.data<T>(), gc.data<T>(), dx.data<T>(), x.numel());
    });
    return std::vector<Tensor>{dx};
  });
  return out;
}

}  // namespace neutrino
