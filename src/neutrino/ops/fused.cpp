// Fused ops: several steps of the math in one pass over the data. Each has an unfused
// equivalent built from primitives, and the tests check the two agree.
#include <algorithm>
#include <cmath>

#include "neutrino/backend/kernels.h"
#include "neutrino/core/precision.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

namespace {
// GEMM with the bias as its starting value, then relu in place: the path for float64 and for
// products too small to be worth oneDNN's dispatch.
void linear_reference(const Tensor& xc, const Tensor& wc, const Tensor& bias, int64_t m, int64_t n,
                      int64_t k, bool relu, Tensor& out) {
  dispatch_float(xc.dtype(), "linear", [&]<class T>() {
    T* y = out.data<T>();
    if (bias.defined()) {
      const Tensor bc = materialize(bias);
      const T* b = bc.data<T>();
      for (int64_t r = 0; r < m; ++r) std::copy(b, b + n, y + r * n);
    }
    // W is (N, K) row-major, so W^T is read with row stride 1 and column stride K.
    kernels::gemm(m, n, k, xc.data<T>(), k, 1, wc.data<T>(), 1, k, y, bias.defined());
    if (relu) kernels::unary(kernels::Unary::kRelu, y, y, m * n);
  });
}
}  // namespace

// y = act(x @ W^T + b): x (..., K), W (N, K), b (N) -> y (..., N).
// Backward (g' = g * [y > 0] for relu): dx = g' @ W, dW = g'^T @ x, db = sum of g' over rows.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Epilogue epilogue) {
  // A bfloat16 x (the end of a bf16 conv stack) takes the float32 weights and gives a float32 y.
  const bool x_bf16 = x.dtype() == DType::kBFloat16;
  if (x_bf16) {
    NEUTRINO_CHECK_VALUE(weight.dtype() == DType::kFloat32 &&
                             (!bias.defined() || bias.dtype() == DType::kFloat32),
                         "linear: a bfloat16 input {} takes float32 weight and bias, got {}",
                         x.shape_string(), dtype_name(weight.dtype()));
  } else {
    check_same_float(x, weight, "linear");
  }
  NEUTRINO_CHECK_SHAPE(weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1),
                       "linear: input {} does not fit weight {} (expected last dim {})",
                       x.shape_string(), weight.shape_string(),
                       weight.dim() == 2 ? weight.size(1) : -1);
  if (bias.defined()) {
    if (!x_bf16) check_same_float(x, bias, "linear");
    NEUTRINO_CHECK_SHAPE(bias.dim() == 1 && bias.size(0) == weight.size(0),
                         "linear: bias {} does not fit weight {}", bias.shape_string(),
                         weight.shape_string());
  }
  const int64_t k = weight.size(1), n = weight.size(0);
  const int64_t m = x.numel() / std::max<int64_t>(k, 1);
  const bool large = m >= 32 && n * k >= 4096;
  // Only oneDNN's bf16 matmul reads bf16 directly; elsewhere x is widened first.
  if (x_bf16 && !(large && bf16_supported())) return linear(x.to(DType::kFloat32), weight, bias, epilogue);
  Shape out_shape = x.shape();
  out_shape.back() = n;
  const Tensor xc = materialize(x), wc = materialize(weight);
  Tensor out = Tensor::empty(out_shape, weight.dtype());
  const bool relu = epilogue == Epilogue::kRelu;
  // oneDNN's matmul pays off from a few dozen rows; a single row (batch-1 inference) is a
  // matrix-vector product that sgemm does faster.
  const bool fp32 = x.dtype() == DType::kFloat32 && compute_precision() == Precision::kFloat32;
  if (x_bf16) {
    const Tensor bc = bias.defined() ? materialize(bias) : Tensor();
    kernels::linear_forward(m, n, k, xc.data<bfloat16>(), wc.data<float>(),
                            bias.defined() ? bc.data<float>() : nullptr, out.data<float>(), relu);
  } else if (x.dtype() == DType::kFloat32 && large) {
    const Tensor bc = bias.defined() ? materialize(bias) : Tensor();
    kernels::linear_forward(m, n, k, xc.data<float>(), wc.data<float>(),
                            bias.defined() ? bc.data<float>() : nullptr, out.data<float>(), relu);
  } else if (fp32 && m <= 4 && n * k >= 4096) {
    const Tensor bc = bias.defined() ? materialize(bias) : Tensor();
    kernels::linear_few_rows(m, n, k, xc.data<float>(), wc.data<float>(),
                             bias.defined() ? bc.data<float>() : nullptr, out.data<float>(), relu);
  } else {
    linear_reference(xc, wc, bias, m, n, k, relu, out);
  }
  if (!any_requires_grad({&x, &weight, &bias})) return out;
  const Tensor y = out.detach();
  record(out, "linear", {x, weight, bias}, [x, weight, bias, y, epilogue, m, k, n](const Tensor& g) {
    const Tensor gy =
        epilogue == Epilogue::kRelu ? mul(g, apply_unary(y, static_cast<int>(kernels::Unary::kStep), "linear")) : g;
    const Tensor gy2 = reshape(gy, {m, n});
    return std::vector<Tensor>{
        needs_grad(x) ? reshape(matmul(gy2, weight), x.shape()).to(x.dtype()) : Tensor(),
        needs_grad(weight) ? matmul(transpose(gy2, 0, 1), reshape(widen_bf16(x), {m, k})) : Tensor(),
        needs_grad(bias) ? sum(gy2, {0}) : Tensor()};
  });
  return out;
}

// loss = -1/N sum_i (z_i[l_i] - logsumexp(z_i)); dloss/dz = (softmax(z) - one_hot(l)) / N.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels) {
  check_float(logits, "softmax_cross_entropy");
  NEUTRINO_CHECK_SHAPE(logits.dim() == 2 && logits.size(0) > 0,
                       "softmax_cross_entropy: logits must be (batch, classes), got {}",
                       logits.shape_string());
  NEUTRINO_CHECK_VALUE(labels.dtype() == DType::kInt64,
                       "softmax_cross_entropy: labels must be int64, got {}",
                       dtype_name(labels.dtype()));
  const int64_t rows = logits.size(0), classes = logits.size(1);
  NEUTRINO_CHECK_SHAPE(labels.numel() == rows,
                       "softmax_cross_entropy: {} labels for logits {}", labels.numel(),
                       logits.shape_string());
  const Tensor z = materialize(logits), lc = materialize(labels);
  const int64_t* l = lc.data<int64_t>();
  for (int64_t i = 0; i < rows; ++i) {
    NEUTRINO_CHECK_VALUE(l[i] >= 0 && l[i] < classes,
                         "softmax_cross_entropy: label {} at position {} is out of range for {} "
                         "classes",
                         l[i], i, classes);
  }
  Tensor out = Tensor::empty({}, logits.dtype());
  dispatch_float(logits.dtype(), "softmax_cross_entropy", [&]<class T>() {
    const T* p = z.data<T>();
    double total = 0;
    for (int64_t i = 0; i < rows; ++i) {
      const T* row = p + i * classes;
      const T top = *std::max_element(row, row + classes);
      double sum = 0;
      for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(row[c] - top));
      total += std::log(sum) - static_cast<double>(row[l[i]] - top);
    }
    *out.data<T>() = static_cast<T>(total / static_cast<double>(rows));
  });
  record(out, "softmax_cross_entropy", {logits}, [logits, lc, rows, classes](const Tensor& g) {
    Tensor hot = Tensor::zeros({rows, classes}, logits.dtype());
    dispatch_float(logits.dtype(), "softmax_cross_entropy", [&]<class T>() {
      T* h = hot.data<T>();
      const int64_t* label = lc.data<int64_t>();
      for (int64_t i = 0; i < rows; ++i) h[i * classes + label[i]] = T(1);
    });
    return std::vector<Tensor>{
        mul(sub(softmax(logits, 1), hot), mul(g, 1.0 / static_cast<double>(rows)))};
  });
  return out;
}

namespace detail {
Tensor relu_same_layout(const Tensor& x) {
  const Tensor xd = dense_nchw_or_nhwc(x);
  Tensor out = empty_same_layout(xd);
  if (x.dtype() == DType::kBFloat16) {
    kernels::relu(xd.data<bfloat16>(), out.data<bfloat16>(), x.numel());
  } else {
    dispatch_float(x.dtype(), "relu", [&]<class T>() {
      kernels::unary(kernels::Unary::kRelu, xd.data<T>(), out.data<T>(), x.numel(), 0, 0);
    });
  }
  if (!any_requires_grad({&x})) return out;
  record(out, "relu", {x}, [y = out.detach()](const Tensor& g) {
    return std::vector<Tensor>{relu_backward(g, y)};
  });
  return out;
}
}  // namespace detail

// y = maxpool(relu(conv(x) + b)). With a graph to record it runs as relu(maxpool(conv(x) + b)):
// the same values and gradients (relu is monotonic, and a window whose maximum is not positive
// passes no gradient either way), but the relu and its backward touch the pooled tensor, a
// quarter of the convolution's output, and the convolution's backward needs no relu mask.
// The fused kernel needs: float32, no gradient, a 3x3 kernel of
// stride 1, dilation 1, one group and padding 1 on every side, up to 4 input channels, a multiple
// of 16 output channels up to 64, and a 2x2 pool of stride 2 without padding over even H and W.
Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                              const Conv2dParams& conv, const Pool2dParams& pool) {
  const bool fusable =
      x.dtype() == DType::kFloat32 && weight.dtype() == DType::kFloat32 &&
      (!bias.defined() || bias.dtype() == DType::kFloat32) &&
      !any_requires_grad({&x, &weight, &bias}) && x.dim() == 4 && weight.dim() == 4 &&
      x.size(1) == weight.size(1) && weight.size(2) == 3 && weight.size(3) == 3 &&
      x.size(2) % 2 == 0 && x.size(3) % 2 == 0 && x.size(2) > 0 && x.size(3) > 0 &&
      conv.stride_h == 1 && conv.stride_w == 1 && conv.dilation_h == 1 && conv.dilation_w == 1 &&
      conv.groups == 1 && conv.pad_top == 1 && conv.pad_bottom == 1 && conv.pad_left == 1 &&
      conv.pad_right == 1 && pool.kernel_h == 2 && pool.kernel_w == 2 && pool.stride_h == 2 &&
      pool.stride_w == 2 && pool.pad_top == 0 && pool.pad_left == 0 && pool.pad_bottom == 0 &&
      pool.pad_right == 0 && compute_precision() == Precision::kFloat32 &&
      kernels::conv3x3_relu_max_pool2x2_supported(weight.size(1), weight.size(0)) &&
      (!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)));
  if (!fusable) {
    if (any_requires_grad({&x, &weight, &bias})) {
      return max_pool2d_relu(conv2d(x, weight, bias, conv), pool);
    }
    return max_pool2d(conv2d(x, weight, bias, conv, Epilogue::kRelu), pool);
  }
  const Tensor xc = materialize(x), wc = materialize(weight);
  const Tensor bc = bias.defined() ? materialize(bias) : Tensor();
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3), out_c = weight.size(0);
  Tensor out = empty_channels_last({n, out_c, h / 2, w / 2}, DType::kFloat32);
  kernels::conv3x3_relu_max_pool2x2(xc.data<float>(), n, x.size(1), h, w, wc.data<float>(),
                                    bc.defined() ? bc.data<float>() : nullptr, out_c,
                                    out.data<float>());
  return out;
}

}  // namespace neutrino
