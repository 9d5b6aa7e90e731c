// Per-channel reductions of channels-last data.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

namespace {
// Rows per float block: short enough for float sums to stay accurate (each block is added to a
// double total), long enough that the block loop vectorizes over channels.
constexpr int64_t kBlockRows = 256;

// acc[c] = sum of rows [0, n) of x; its own function so that the restrict pointers let the
// channel loop vectorize.
void sum_rows(const float* __restrict x, int64_t n, int64_t c, float* __restrict acc) {
  std::fill(acc, acc + c, 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    const float* __restrict row = x + r * c;
    for (int64_t ch = 0; ch < c; ++ch) acc[ch] += row[ch];
  }
}
}  // namespace

void channel_sums(const float* x, int64_t rows, int64_t c, float* out) {
  const bool parallel = rows * c > kGrainElements;
  const int max_threads = parallel ? omp_get_max_threads() : 1;
  // Reused from call to call, so a training step allocates nothing here.
  thread_local std::vector<double> totals;
  totals.assign(static_cast<size_t>(max_threads * c), 0.0);
  double* all = totals.data();
#pragma omp parallel num_threads(max_threads) if (parallel)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = rows * t / nt, end = rows * (t + 1) / nt;
    thread_local std::vector<float> block;
    block.resize(static_cast<size_t>(c));
    double* total = all + t * c;
    for (int64_t r = begin; r < end; r += kBlockRows) {
      sum_rows(x + r * c, std::min(kBlockRows, end - r), c, block.data());
      for (int64_t ch = 0; ch < c; ++ch) total[ch] += block[static_cast<size_t>(ch)];
    }
  }
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0;
    for (int t = 0; t < max_threads; ++t) sum += all[t * c + ch];
    out[ch] = static_cast<float>(sum);
  }
}

}  // namespace neutrino::kernels
