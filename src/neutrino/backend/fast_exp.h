// exp for float written so that a `#pragma omp simd` loop vectorizes it (private to backend/):
// the recurrent gates and the attention weights call it once per value.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace neutrino::kernels {

// 2^n * p(r) with x = n ln2 + r, |r| <= ln2 / 2, p the degree-6 Taylor polynomial (relative error
// ~2e-7, the same order as float rounding); inputs are clamped to where the result is finite and
// normal.
inline float fast_exp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  // Round to nearest by the 1.5 * 2^23 trick (vectorizes; nearbyint need not).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693145751953125f - n * 1.42860682030941723e-6f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

// exp(x) for x <= 0 that is exactly 0 below float's normal range (and for -inf): softmax weights
// of masked keys must vanish, not stay at exp(-87).
inline float fast_exp_nonpositive(float x) { return x < -87.0f ? 0.0f : fast_exp(x); }
inline double fast_exp_nonpositive(double x) { return std::exp(x); }

}  // namespace neutrino::kernels
