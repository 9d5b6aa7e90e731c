// Per-channel reductions of channels-last data.
#include <algorithm>
#include <mutex>
#include <utility>
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
  // Each thread's row range leaves c double totals, added in row order at the end whichever
  // thread finished first. The buffers are reused from call to call, so a training step
  // allocates nothing here; the body reaches them through references, since a thread_local
  // named inside it would be the worker thread's own.
  thread_local std::vector<double> totals_storage;
  thread_local std::vector<std::pair<int64_t, size_t>> ranges_storage;  // (first row, offset)
  std::vector<double>& totals = totals_storage;
  std::vector<std::pair<int64_t, size_t>>& ranges = ranges_storage;
  totals.clear();
  ranges.clear();
  std::mutex lock;
  parallel_for(rows, rows * c > kGrainElements, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> block;
    thread_local std::vector<double> total;
    block.resize(static_cast<size_t>(c));
    total.assign(static_cast<size_t>(c), 0.0);
    for (int64_t r = begin; r < end; r += kBlockRows) {
      sum_rows(x + r * c, std::min(kBlockRows, end - r), c, block.data());
      for (size_t ch = 0; ch < total.size(); ++ch) total[ch] += block[ch];
    }
    const std::lock_guard<std::mutex> hold(lock);
    ranges.emplace_back(begin, totals.size());
    totals.insert(totals.end(), total.begin(), total.end());
  });
  std::sort(ranges.begin(), ranges.end());
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0;
    for (const auto& range : ranges) sum += totals[range.second + static_cast<size_t>(ch)];
    out[ch] = static_cast<float>(sum);
  }
}

}  // namespace neutrino::kernels
