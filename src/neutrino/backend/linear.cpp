// Dense's entry, kernels::linear: it picks the kernel for the shape, dtype and precision. The
// kernels are oneDNN's matmul (dnnl_matmul.cpp), the few-rows dot products (gemv.cpp) and the
// reference below, the GEMM with the bias as its starting value and relu in place.
#include <algorithm>

#include "neutrino/backend/kernels.h"
#include "neutrino/core/precision.h"

namespace neutrino::kernels {

namespace {
// oneDNN's matmul pays off from a few dozen rows; a single row (batch-1 inference) is a
// matrix-vector product that the few-rows kernel does faster.
bool large(int64_t m, int64_t n, int64_t k) { return m >= 32 && n * k >= 4096; }
bool few_rows(int64_t m, int64_t n, int64_t k) { return m <= 4 && n * k >= 4096; }

// The path for float64 and for products too small to be worth oneDNN's dispatch.
template <class T>
void linear_reference(int64_t m, int64_t n, int64_t k, const T* x, const T* w, const T* bias,
                      T* y, bool relu) {
  if (bias != nullptr) {
    for (int64_t r = 0; r < m; ++r) std::copy(bias, bias + n, y + r * n);
  }
  // W is (N, K) row-major, so W^T is read with row stride 1 and column stride K.
  gemm(m, n, k, x, k, 1, w, 1, k, y, bias != nullptr);
  if (relu) unary(Unary::kRelu, y, y, m * n);
}
}  // namespace

void linear(int64_t m, int64_t n, int64_t k, const float* x, const float* w, const float* bias,
            float* y, bool relu) {
  if (large(m, n, k)) return linear_forward(m, n, k, x, w, bias, y, relu);
  if (compute_precision() == Precision::kFloat32 && few_rows(m, n, k)) {
    return linear_few_rows(m, n, k, x, w, bias, y, relu);
  }
  linear_reference(m, n, k, x, w, bias, y, relu);
}

void linear(int64_t m, int64_t n, int64_t k, const double* x, const double* w, const double* bias,
            double* y, bool relu) {
  linear_reference(m, n, k, x, w, bias, y, relu);
}

void linear(int64_t m, int64_t n, int64_t k, const bfloat16* x, const float* w, const float* bias,
            float* y, bool relu) {
  // Only oneDNN's bf16 matmul reads bf16 directly; elsewhere x is widened first (exactly).
  if (large(m, n, k) && bf16_supported()) return linear_forward(m, n, k, x, w, bias, y, relu);
  const Tensor wide = Tensor::empty({m * k}, DType::kFloat32);
  convert(x, wide.data<float>(), m * k);
  linear(m, n, k, wide.data<float>(), w, bias, y, relu);
}

}  // namespace neutrino::kernels
