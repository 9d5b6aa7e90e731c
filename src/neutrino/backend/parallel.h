// Splitting a loop over the cores (private to backend/): the one parallel_for, and the named
// grain sizes below which work stays on the calling thread (small work is done before a second
// core would wake up: batch-1 inference).
#pragma once

#include <omp.h>

#include <cstdint>

#include "neutrino/backend/thread_budget.h"

namespace neutrino::kernels {

// Elements of an elementwise pass over memory (bf16 conversion and relu, relu's backward, the
// pools' input elements, channel sums, index_add's additions).
inline constexpr int64_t kGrainElements = int64_t{1} << 16;
// Elements of a strided copy (a layout change of a batch of images) or of a gather
// (index_select).
inline constexpr int64_t kGrainCopy = int64_t{1} << 15;
// Weights (n * k) of the few-rows Dense kernel.
inline constexpr int64_t kGrainDotWeights = int64_t{1} << 16;
// Multiply-adds of a oneDNN convolution: below this it runs on one thread (see dnnl_conv.cpp).
inline constexpr int64_t kGrainConvMacs = int64_t{1} << 20;
// Multiply-adds of the fused first layer (conv3x3 + relu + 2x2 max pool).
inline constexpr int64_t kGrainFusedConvMacs = int64_t{1} << 21;
// Multiply-adds of an attention (Tq * Tk * (D + Dv) per head) and values of a normalization:
// below these they run on the calling thread.
inline constexpr int64_t kGrainAttentionMacs = int64_t{1} << 17;
inline constexpr int64_t kGrainNormValues = int64_t{1} << 14;
// Fixed chunks that unary kernels and Adam's update split their arrays into (parallel from two
// chunks): each element's result then never depends on the thread count.
inline constexpr int64_t kUnaryChunk = int64_t{1} << 15;
inline constexpr int64_t kOptimizerBlock = int64_t{1} << 14;

// body(begin, end) over [0, n): one contiguous block per thread when `parallel`, else the whole
// range on the calling thread with no OpenMP region at all. The body is an ordinary function of
// its range: an OpenMP-outlined loop body keeps its bounds and pointers in the shared frame,
// which ran the batch-1 channels-last pool at half speed.
template <class Body>
void parallel_for(int64_t n, bool parallel, const Body& body) {
  // A budget of one thread opens no region either: an OpenMP region entered from a second
  // thread (a data loader's) starts a second thread team, and with more OpenMP threads than
  // cores libgomp stops spinning at barriers, so every region of the main team pays a wake-up.
  if (!parallel || n < 2 || follow_load() < 2) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    body(n * t / nt, n * (t + 1) / nt);
  }
}

}  // namespace neutrino::kernels
