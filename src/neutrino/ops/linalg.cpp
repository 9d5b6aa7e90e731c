// Linear algebra: matmul (batched, broadcast) and linear (Dense: x @ W^T + b with an optional
// relu epilogue). Each calls one backend entry, which picks the kernel: kernels::gemm for matmul,
// kernels::linear for linear.
#include <algorithm>

#include "neutrino/backend/kernels.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

// ---- matmul --------------------------------------------------------------------------------

namespace {
// Batch strides of t's leading dims against the broadcast batch shape, 0 on broadcast dims.
Shape batch_strides(const Tensor& t, const Shape& batch) {
  Shape s(batch.size(), 0);
  const size_t lead = batch.size() - (t.shape().size() - 2);
  for (size_t i = 0; i + 2 < t.shape().size(); ++i) {
    s[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  }
  return s;
}

// 1-D operands act as a row (left) or a column (right) vector whose unit dim is then dropped,
// as in NumPy.
Tensor matmul_vectors(const Tensor& a, const Tensor& b) {
  const Tensor a2 = a.dim() == 1 ? reshape(a, {1, a.size(0)}) : a;
  const Tensor b2 = b.dim() == 1 ? reshape(b, {b.size(0), 1}) : b;
  NEUTRINO_CHECK_SHAPE(a2.size(-1) == b2.size(-2), "matmul: cannot multiply {} by {}",
                       a.shape_string(), b.shape_string());
  const Tensor r = matmul(a2, b2);
  Shape s = r.shape();
  if (b.dim() == 1) s.pop_back();
  if (a.dim() == 1) s.erase(s.end() - (b.dim() == 1 ? 1 : 2));
  return reshape(r, s);
}
}  // namespace

// (..., n, k) @ (..., k, m) -> (..., n, m); batch dims broadcast. One kernels::gemm per batch
// entry, reading the operands through their strides (a transposed view needs no copy).
// Backward: da = g @ b^T, db = a^T @ g, each summed over the batch dims it was broadcast along.
Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_float(a, b, "matmul");
  NEUTRINO_CHECK_SHAPE(a.dim() >= 1 && b.dim() >= 1, "matmul: cannot multiply {} by {}",
                       a.shape_string(), b.shape_string());
  if (a.dim() == 1 || b.dim() == 1) return matmul_vectors(a, b);
  const int64_t n = a.size(-2), k = a.size(-1), m = b.size(-1);
  NEUTRINO_CHECK_SHAPE(b.size(-2) == k, "matmul: cannot multiply {} by {}", a.shape_string(),
                       b.shape_string());
  const Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(n);
  out_shape.push_back(m);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  const Shape sa = batch_strides(a, batch), sb = batch_strides(b, batch);
  Shape so = contiguous_strides(batch);
  for (auto& s : so) s *= n * m;
  const int64_t a_row = a.strides()[a.dim() - 2], a_col = a.strides()[a.dim() - 1];
  const int64_t b_row = b.strides()[b.dim() - 2], b_col = b.strides()[b.dim() - 1];
  dispatch_float(a.dtype(), "matmul", [&]<class T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    kernels::strided_for_each<3>(batch, {sa.data(), sb.data(), so.data()},
                                 [&](const std::array<int64_t, 3>& at) {
                                   kernels::gemm(n, m, k, pa + at[0], a_row, a_col, pb + at[1],
                                                 b_row, b_col, po + at[2], false);
                                 });
  });
  record(out, "matmul", {a, b}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{
        needs_grad(a) ? sum_to(matmul(g, transpose(b, -1, -2)), a.shape()) : Tensor(),
        needs_grad(b) ? sum_to(matmul(transpose(a, -1, -2), g), b.shape()) : Tensor()};
  });
  return out;
}

// ---- linear --------------------------------------------------------------------------------

namespace {
// x float32/float64 with weight and bias of its dtype, or a bfloat16 x (the end of a bf16 conv
// stack) with float32 weight and bias.
void check_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
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
}
}  // namespace

// y = act(x @ W^T + b): x (..., K), W (N, K), b (N) -> y (..., N), with M = prod(...) rows.
// One kernels::linear call (oneDNN's matmul with the bias and relu fused, the few-rows kernel,
// or the GEMM), chosen by the backend. A bfloat16 x gives a float32 y.
// Backward (g' = g * [y > 0] for relu): dx = g' @ W, dW = g'^T @ x, db = sum of g' over rows.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Epilogue epilogue) {
  check_linear(x, weight, bias);
  const int64_t k = weight.size(1), n = weight.size(0);
  const int64_t m = x.numel() / std::max<int64_t>(k, 1);
  Shape out_shape = x.shape();
  out_shape.back() = n;
  const Tensor xc = materialize(x), wc = materialize(weight);
  const Tensor bc = bias.defined() ? materialize(bias) : Tensor();
  Tensor out = Tensor::empty(out_shape, weight.dtype());
  const bool relu = epilogue == Epilogue::kRelu;
  if (x.dtype() == DType::kBFloat16) {
    kernels::linear(m, n, k, xc.data<bfloat16>(), wc.data<float>(),
                    bias.defined() ? bc.data<float>() : nullptr, out.data<float>(), relu);
  } else {
    dispatch_float(x.dtype(), "linear", [&]<class T>() {
      kernels::linear(m, n, k, xc.data<T>(), wc.data<T>(), bias.defined() ? bc.data<T>() : nullptr,
                      out.data<T>(), relu);
    });
  }
  if (!any_requires_grad({&x, &weight, &bias})) return out;
  const Tensor y = relu ? out.detach() : Tensor();
  record(out, "linear", {x, weight, bias}, [x, weight, bias, y, m, k, n](const Tensor& g) {
    const Tensor gy = y.defined() ? relu_backward(g, y) : g;
    const Tensor gy2 = reshape(gy, {m, n});
    return std::vector<Tensor>{
        needs_grad(x) ? cast(reshape(matmul(gy2, weight), x.shape()), x.dtype()) : Tensor(),
        needs_grad(weight) ? matmul(transpose(gy2, 0, 1), reshape(widen_bf16(x), {m, k})) : Tensor(),
        needs_grad(bias) ? sum(gy2, {0}) : Tensor()};
  });
  return out;
}

}  // namespace neutrino
