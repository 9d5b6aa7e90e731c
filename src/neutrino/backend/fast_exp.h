// exp and erf for float written so that a `#pragma omp simd` loop vectorizes them (private to
// backend/): the recurrent gates, the attention weights and GELU call them once per value.
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
inline double fast_exp(double x) { return std::exp(x); }

// erf(x) as x P(x^2) / Q(x^2) on [-4, 4] (outside it erf is +-1 in float): the rational
// approximation of Eigen's and XLA's float erf, absolute error under 5e-7, relative under 3e-7
// near 0 (tests/test_fast_math.cpp checks both against std::erf).
inline float fast_erf(float x) {
  x = std::min(std::max(x, -4.0f), 4.0f);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return x * p / q;
}
inline double fast_erf(double x) { return std::erf(x); }

// tanh(x) = 1 - 2 / (e^(2x) + 1), exact at the clamped ends (+-1 beyond |x| = 9 in float).
inline float fast_tanh(float x) {
  x = std::min(std::max(x, -9.0f), 9.0f);
  return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f);
}
inline double fast_tanh(double x) { return std::tanh(x); }

}  // namespace neutrino::kernels
