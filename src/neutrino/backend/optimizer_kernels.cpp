// The optimizers' update loops (optim/optimizer.cpp checks, keeps the slots and calls these).
// Pointers are restrict and every constant is a local, so the loops vectorize; Adam's runs over
// fixed blocks spread over the cores (each element's update is independent, so results do not
// depend on the split).
#include <algorithm>
#include <cmath>

#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

template <class T>
void scale_in_place(T* w, int64_t n, double factor) {
  for (int64_t j = 0; j < n; ++j) w[j] *= static_cast<T>(factor);
}

template <class T>
double sum_of_squares(const T* x, int64_t n) {
  double total = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double g = static_cast<double>(x[j]);
    total += g * g;
  }
  return total;
}

template <class T>
void sgd_step(T* w, const T* g, T* velocity, int64_t n, double lr, double momentum,
              bool nesterov) {
  if (momentum == 0) {
    for (int64_t j = 0; j < n; ++j) w[j] -= static_cast<T>(lr) * g[j];
    return;
  }
  T* b = velocity;
  const T m = static_cast<T>(momentum);
  for (int64_t j = 0; j < n; ++j) {
    b[j] = m * b[j] + g[j];
    const T direction = nesterov ? g[j] + m * b[j] : b[j];
    w[j] -= static_cast<T>(lr) * direction;
  }
}

namespace {
// The per-element Adam step over [0, n); amsgrad is a separate loop rather than a branch per
// element.
template <class T>
void adam_block(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v,
                T* __restrict vmax, int64_t n, T b1, T b2, T step_size, T bias2_sqrt, T eps) {
  const T one_b1 = T(1) - b1, one_b2 = T(1) - b2;
  if (vmax == nullptr) {
    for (int64_t j = 0; j < n; ++j) {
      m[j] = b1 * m[j] + one_b1 * g[j];
      v[j] = b2 * v[j] + one_b2 * g[j] * g[j];
      w[j] -= step_size * m[j] / (std::sqrt(v[j]) / bias2_sqrt + eps);
    }
    return;
  }
  for (int64_t j = 0; j < n; ++j) {
    m[j] = b1 * m[j] + one_b1 * g[j];
    v[j] = b2 * v[j] + one_b2 * g[j] * g[j];
    vmax[j] = std::max(vmax[j], v[j]);
    w[j] -= step_size * m[j] / (std::sqrt(vmax[j]) / bias2_sqrt + eps);
  }
}
}  // namespace

template <class T>
void adam_step(T* w, const T* g, T* m, T* v, T* vmax, int64_t n, double b1, double b2,
               double step_size, double bias2_sqrt, double eps) {
  if (n < 2 * kOptimizerBlock) {
    return adam_block<T>(w, g, m, v, vmax, n, T(b1), T(b2), T(step_size), T(bias2_sqrt), T(eps));
  }
  const int64_t blocks = (n + kOptimizerBlock - 1) / kOptimizerBlock;
  parallel_for(blocks, true, [&](int64_t first, int64_t last) {
    for (int64_t blk = first; blk < last; ++blk) {
      const int64_t begin = blk * kOptimizerBlock, end = std::min(n, begin + kOptimizerBlock);
      adam_block<T>(w + begin, g + begin, m + begin, v + begin,
                    vmax != nullptr ? vmax + begin : nullptr, end - begin, T(b1), T(b2),
                    T(step_size), T(bias2_sqrt), T(eps));
    }
  });
}

template <class T>
void rmsprop_step(T* w, const T* g, T* v, T* avg, T* buf, int64_t n, double lr, double rho,
                  double momentum, double epsilon) {
  for (int64_t j = 0; j < n; ++j) {
    v[j] = static_cast<T>(rho) * v[j] + static_cast<T>(1 - rho) * g[j] * g[j];
    T denom_sq = v[j];
    if (avg != nullptr) {
      avg[j] = static_cast<T>(rho) * avg[j] + static_cast<T>(1 - rho) * g[j];
      denom_sq -= avg[j] * avg[j];
    }
    const T step = g[j] / (std::sqrt(denom_sq) + static_cast<T>(epsilon));
    if (buf != nullptr) {
      buf[j] = static_cast<T>(momentum) * buf[j] + step;
      w[j] -= static_cast<T>(lr) * buf[j];
    } else {
      w[j] -= static_cast<T>(lr) * step;
    }
  }
}

#define NEUTRINO_INSTANTIATE(T)                                                                \
  template void scale_in_place<T>(T*, int64_t, double);                                        \
  template double sum_of_squares<T>(const T*, int64_t);                                        \
  template void sgd_step<T>(T*, const T*, T*, int64_t, double, double, bool);                  \
  template void adam_step<T>(T*, const T*, T*, T*, T*, int64_t, double, double, double, double, \
                             double);                                                          \
  template void rmsprop_step<T>(T*, const T*, T*, T*, T*, int64_t, double, double, double,      \
                                double);
NEUTRINO_INSTANTIATE(float)
NEUTRINO_INSTANTIATE(double)
#undef NEUTRINO_INSTANTIATE

}  // namespace neutrino::kernels
