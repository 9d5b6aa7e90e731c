// Layer and RMS normalization over the last dim, forward and backward each one pass over the
// rows (a row is in L1 while its statistics and its outputs are computed), with the parameter
// gradients summed per column in row order so that they do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

namespace {

// dweight[c] = sum_rows grad_y * xhat and dbias[c] = sum_rows grad_y over column ranges split
// across the threads, xhat recomputed from x and the row statistics (mean may be null: RMS).
template <class T>
void parameter_grads(const T* grad_y, const T* x, const T* mean, const T* rstd, int64_t rows,
                     int64_t n, T* dweight, T* dbias) {
  if (!dweight && !dbias) return;
  parallel_for(n, rows * n >= kGrainNormValues && n >= 32, [&](int64_t begin, int64_t end) {
    std::vector<T> dw(static_cast<size_t>(end - begin), T(0)), db(dw.size(), T(0));
    for (int64_t r = 0; r < rows; ++r) {
      const T* __restrict g = grad_y + r * n + begin;
      const T* __restrict xr = x + r * n + begin;
      const T mu = mean ? mean[r] : T(0), rs = rstd[r];
      T* __restrict w = dw.data();
      T* __restrict b = db.data();
#pragma omp simd
      for (int64_t c = 0; c < end - begin; ++c) {
        w[c] += g[c] * (xr[c] - mu) * rs;
        b[c] += g[c];
      }
    }
    if (dweight) std::copy(dw.begin(), dw.end(), dweight + begin);
    if (dbias) std::copy(db.begin(), db.end(), dbias + begin);
  });
}

}  // namespace

// mean = sum(x) / n, var = sum((x - mean)^2) / n (two loops over the cached row: the centered
// sum keeps float's variance accurate when |mean| >> std), y = (x - mean) * rstd * w + b.
template <class T>
void layer_norm_forward(const T* x, const T* weight, const T* bias, int64_t rows, int64_t n,
                        double eps, T* y, T* mean, T* rstd) {
  parallel_for(rows, rows * n >= kGrainNormValues, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* __restrict xr = x + r * n;
      T* __restrict yr = y + r * n;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < n; ++c) sum += xr[c];
      const T mu = sum / static_cast<T>(n);
      T sq = 0;
#pragma omp simd reduction(+ : sq)
      for (int64_t c = 0; c < n; ++c) sq += (xr[c] - mu) * (xr[c] - mu);
      const T rs = static_cast<T>(1.0 / std::sqrt(static_cast<double>(sq) / n + eps));
      mean[r] = mu;
      rstd[r] = rs;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) {
        const T h = (xr[c] - mu) * rs;
        yr[c] = (weight ? h * weight[c] : h) + (bias ? bias[c] : T(0));
      }
    }
  });
}

// With xhat = (x - mean) * rstd and gh = grad_y * w:
// dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)); dw = sum grad_y * xhat; db = sum grad_y.
template <class T>
void layer_norm_backward(const T* grad_y, const T* x, const T* weight, const T* mean,
                         const T* rstd, int64_t rows, int64_t n, T* dx, T* dweight, T* dbias) {
  parallel_for(rows, rows * n >= kGrainNormValues, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* __restrict g = grad_y + r * n;
      const T* __restrict xr = x + r * n;
      T* __restrict d = dx + r * n;
      const T mu = mean[r], rs = rstd[r];
      T sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t c = 0; c < n; ++c) {
        const T gh = weight ? g[c] * weight[c] : g[c];
        sum_g += gh;
        sum_gx += gh * (xr[c] - mu) * rs;
      }
      const T mean_g = sum_g / static_cast<T>(n), mean_gx = sum_gx / static_cast<T>(n);
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) {
        const T gh = weight ? g[c] * weight[c] : g[c];
        d[c] = rs * (gh - mean_g - (xr[c] - mu) * rs * mean_gx);
      }
    }
  });
  parameter_grads(grad_y, x, mean, rstd, rows, n, dweight, dbias);
}

// rstd = 1 / sqrt(mean(x^2) + eps), y = x * rstd * w.
template <class T>
void rms_norm_forward(const T* x, const T* weight, int64_t rows, int64_t n, double eps, T* y,
                      T* rstd) {
  parallel_for(rows, rows * n >= kGrainNormValues, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* __restrict xr = x + r * n;
      T* __restrict yr = y + r * n;
      T sq = 0;
#pragma omp simd reduction(+ : sq)
      for (int64_t c = 0; c < n; ++c) sq += xr[c] * xr[c];
      const T rs = static_cast<T>(1.0 / std::sqrt(static_cast<double>(sq) / n + eps));
      rstd[r] = rs;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) yr[c] = weight ? xr[c] * rs * weight[c] : xr[c] * rs;
    }
  });
}

// With gh = grad_y * w: dx = rstd * (gh - x * rstd^2 * mean(gh * x)); dw = sum grad_y * x * rstd.
template <class T>
void rms_norm_backward(const T* grad_y, const T* x, const T* weight, const T* rstd, int64_t rows,
                       int64_t n, T* dx, T* dweight) {
  parallel_for(rows, rows * n >= kGrainNormValues, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* __restrict g = grad_y + r * n;
      const T* __restrict xr = x + r * n;
      T* __restrict d = dx + r * n;
      const T rs = rstd[r];
      T sum_gx = 0;
#pragma omp simd reduction(+ : sum_gx)
      for (int64_t c = 0; c < n; ++c) sum_gx += (weight ? g[c] * weight[c] : g[c]) * xr[c];
      const T k = rs * rs * sum_gx / static_cast<T>(n);
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) {
        const T gh = weight ? g[c] * weight[c] : g[c];
        d[c] = rs * (gh - xr[c] * k);
      }
    }
  });
  parameter_grads(grad_y, x, static_cast<const T*>(nullptr), rstd, rows, n, dweight,
                  static_cast<T*>(nullptr));
}

#define NEUTRINO_INSTANTIATE(T)                                                                 \
  template void layer_norm_forward<T>(const T*, const T*, const T*, int64_t, int64_t, double,  \
                                      T*, T*, T*);                                            \
  template void layer_norm_backward<T>(const T*, const T*, const T*, const T*, const T*,       \
                                       int64_t, int64_t, T*, T*, T*);                         \
  template void rms_norm_forward<T>(const T*, const T*, int64_t, int64_t, double, T*, T*);     \
  template void rms_norm_backward<T>(const T*, const T*, const T*, const T*, int64_t, int64_t, \
                                     T*, T*);

NEUTRINO_INSTANTIATE(float)
NEUTRINO_INSTANTIATE(double)
#undef NEUTRINO_INSTANTIATE

}  // namespace neutrino::kernels
