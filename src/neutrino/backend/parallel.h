// Splitting a loop over the cores (private to backend/).
#pragma once

#include <omp.h>

#include <cstdint>

#include "neutrino/backend/thread_budget.h"

namespace neutrino::kernels {

// body(begin, end) over [0, n): one contiguous block per thread when `parallel`, else the whole
// range on the calling thread with no OpenMP region at all (small work is done before a second
// core would wake up). The body is an ordinary function of its range: an OpenMP-outlined loop
// body keeps its bounds and pointers in the shared frame, which ran the batch-1 channels-last
// pool at half speed.
template <class Body>
void for_range(int64_t n, bool parallel, const Body& body) {
  if (!parallel || n < 2) {
    body(int64_t{0}, n);
    return;
  }
  follow_load();
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    body(n * t / nt, n * (t + 1) / nt);
  }
}

}  // namespace neutrino::kernels
