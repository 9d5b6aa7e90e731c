// Dense layers on a few rows (batch-1 inference): each output is a dot product of an input row
// with a contiguous weight row, the outputs split over the cores. sgemm runs this shape on one
// thread, and the weight matrix (1.6 MB for a 3136x128 layer) is read at cache speed either way,
// so two threads reading half each halve the time.
#include <algorithm>

#include "neutrino/backend/kernels.h"
#include "neutrino/backend/relu.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

namespace {
constexpr int kLanes = 16;

// Sums of a 16-lane accumulator and a scalar tail.
inline float finish(const float* acc, const float* __restrict a, const float* __restrict b,
                    int64_t from, int64_t n) {
  float total = 0;
  for (int l = 0; l < kLanes; ++l) total += acc[l];
  for (int64_t i = from; i < n; ++i) total += a[i] * b[i];
  return total;
}

// Four dot products of one input row with four weight rows. Four independent 16-lane sums keep
// the FMA units busy (one sum alone waits on each FMA's latency: a quarter of the throughput),
// and each input vector is loaded once for the four rows.
void dot4(const float* __restrict a, const float* __restrict w, int64_t k, float* out) {
  const float* __restrict b0 = w;
  const float* __restrict b1 = w + k;
  const float* __restrict b2 = w + 2 * k;
  const float* __restrict b3 = w + 3 * k;
  float acc0[kLanes] = {}, acc1[kLanes] = {}, acc2[kLanes] = {}, acc3[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= k; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float v = a[i + l];
      acc0[l] += v * b0[i + l];
      acc1[l] += v * b1[i + l];
      acc2[l] += v * b2[i + l];
      acc3[l] += v * b3[i + l];
    }
  }
  out[0] = finish(acc0, a, b0, i, k);
  out[1] = finish(acc1, a, b1, i, k);
  out[2] = finish(acc2, a, b2, i, k);
  out[3] = finish(acc3, a, b3, i, k);
}

float dot(const float* __restrict a, const float* __restrict b, int64_t k) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= k; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  }
  return finish(acc, a, b, i, k);
}

// Outputs [begin, end) of every input row.
void rows_range(int64_t m, int64_t n, int64_t k, const float* x, const float* w,
                const float* bias, float* y, bool relu, int64_t begin, int64_t end) {
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * k;
    float* yr = y + r * n;
    int64_t j = begin;
    for (; j + 4 <= end; j += 4) dot4(xr, w + j * k, k, yr + j);
    for (; j < end; ++j) yr[j] = dot(xr, w + j * k, k);
    for (j = begin; j < end; ++j) {
      const float v = yr[j] + (bias != nullptr ? bias[j] : 0.0f);
      yr[j] = relu ? relu_of(v) : v;
    }
  }
}
}  // namespace

void linear_few_rows(int64_t m, int64_t n, int64_t k, const float* x, const float* w,
                     const float* bias, float* y, bool relu) {
  // Each thread takes a block of outputs, whole groups of four where possible.
  const int64_t groups = (n + 3) / 4;
  parallel_for(groups, n * k >= kGrainDotWeights, [&](int64_t begin, int64_t end) {
    rows_range(m, n, k, x, w, bias, y, relu, std::min(n, begin * 4), std::min(n, end * 4));
  });
}

}  // namespace neutrino::kernels
