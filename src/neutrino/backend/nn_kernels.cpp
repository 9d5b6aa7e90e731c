// Kernels of the neural-network ops: the fused softmax cross-entropy and dropout's mask.
#include <algorithm>
#include <cmath>

#include "neutrino/backend/kernels.h"
#include "neutrino/core/random.h"

namespace neutrino::kernels {

template <class T>
double softmax_cross_entropy(const T* logits, const int64_t* labels, int64_t rows,
                             int64_t classes) {
  double total = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const T* row = logits + i * classes;
    // Shifting by the row's max keeps exp() finite for any logits.
    const T top = *std::max_element(row, row + classes);
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(row[c] - top));
    total += std::log(sum) - static_cast<double>(row[labels[i]] - top);
  }
  return total / static_cast<double>(rows);
}

template <class T>
void one_hot(const int64_t* labels, int64_t rows, int64_t classes, T* out) {
  std::fill(out, out + rows * classes, T(0));
  for (int64_t i = 0; i < rows; ++i) out[i * classes + labels[i]] = T(1);
}

template <class T>
void dropout_mask(T* mask, int64_t n, double p, double scale, Generator& gen) {
  for (int64_t i = 0; i < n; ++i) mask[i] = gen.uniform() >= p ? T(scale) : T(0);
}

#define NEUTRINO_INSTANTIATE(T)                                                           \
  template double softmax_cross_entropy<T>(const T*, const int64_t*, int64_t, int64_t);   \
  template void one_hot<T>(const int64_t*, int64_t, int64_t, T*);                         \
  template void dropout_mask<T>(T*, int64_t, double, double, Generator&);

NEUTRINO_INSTANTIATE(float)
NEUTRINO_INSTANTIATE(double)
#undef NEUTRINO_INSTANTIATE

}  // namespace neutrino::kernels
