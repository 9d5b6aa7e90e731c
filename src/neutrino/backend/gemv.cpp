// Dense layers on a few rows (batch-1 inference): each output is a dot product of an input row
// with a contiguous weight row, the outputs split over the cores. sgemm runs this shape on one
// thread, and the weight matrix (1.6 MB for a 3136x128 layer) is read at cache speed either way,
// so two threads reading half each halve the time.
#include <algorithm>

#include "neutrino/backend/kernels.h"

namespace neutrino::kernels {

namespace {
// 16 independent partial sums, so the loop vectorizes without reassociating one sum.
float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  }
  float total = 0;
  for (int l = 0; l < kLanes; ++l) total += acc[l];
  for (; i < n; ++i) total += a[i] * b[i];
  return total;
}
}  // namespace

void linear_few_rows(int64_t m, int64_t n, int64_t k, const float* x, const float* w,
                     const float* bias, float* y, bool relu) {
#pragma omp parallel for schedule(static) if (n * k >= (1 << 16))
  for (int64_t j = 0; j < n; ++j) {
    const float* row = w + j * k;
    for (int64_t r = 0; r < m; ++r) {
      float v = dot(x + r * k, row, k) + (bias != nullptr ? bias[j] : 0.0f);
      y[r * n + j] = relu ? std::max(v, 0.0f) : v;
    }
  }
}

}  // namespace neutrino::kernels
