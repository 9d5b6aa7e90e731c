// bfloat16 kernels: conversion, the channels-last 2x2 max pool and relu. Plain loops over the bit
// patterns (a bf16 value is the top half of a float32): with -march=native they compile to
// AVX-512 widening loads, shifts and float compares, at memory speed. Code generic over a
// bfloat16 class does not vectorize (it ran the pool 5x slower than float32).
#include <bit>

#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

namespace {
// Below this many values a kernel runs on the calling thread.
constexpr int64_t kParallel = 1 << 16;

inline float widen(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}
// The bits of a float that holds a bfloat16 value exactly (the max of bf16 values is one).
inline uint16_t narrow_exact(float v) {
  return static_cast<uint16_t>(std::bit_cast<uint32_t>(v) >> 16);
}
const uint16_t* bits(const bfloat16* p) { return reinterpret_cast<const uint16_t*>(p); }
uint16_t* bits(bfloat16* p) { return reinterpret_cast<uint16_t*>(p); }
// a if it wins against b under max-pooling's rule: larger, or NaN (NaN propagates).
inline float pool_max(float a, float b) { return (a > b || a != a) ? a : b; }
}  // namespace

void convert(const float* from, bfloat16* to, int64_t n) {
  auto* out = reinterpret_cast<uint16_t*>(to);
  for_range(n, n > kParallel, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = float_to_bf16_bits(from[i]);
  });
}

void convert(const bfloat16* from, float* to, int64_t n) {
  const auto* in = reinterpret_cast<const uint16_t*>(from);
  for_range(n, n > kParallel, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) to[i] = bf16_bits_to_float(in[i]);
  });
}

template <>
void max_pool2x2_nhwc<bfloat16>(const bfloat16* x, int64_t n, int64_t h, int64_t w, int64_t c,
                                bfloat16* y, bool relu) {
  const int64_t oh = h / 2, ow = w / 2;
  const uint16_t* xb = bits(x);
  uint16_t* yb = bits(y);
  for_range(n * oh, n * h * w * c > kParallel, [=](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / oh, oy = row % oh;
      const uint16_t* __restrict top = xb + (b * h + 2 * oy) * w * c;
      const uint16_t* __restrict bottom = top + w * c;
      uint16_t* __restrict out = yb + row * ow * c;
      for (int64_t ox = 0; ox < ow; ++ox) {
        const int64_t at = 2 * ox * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const float m = pool_max(pool_max(widen(top[at + ch]), widen(top[at + c + ch])),
                                   pool_max(widen(bottom[at + ch]), widen(bottom[at + c + ch])));
          out[ox * c + ch] = narrow_exact(relu ? (m > 0.0f ? m : 0.0f) : m);
        }
      }
    }
  });
}

namespace {
// One 2x2 window's c channels. A function of its own so that the compiler sees the restrict
// pointers and vectorizes over channels (inside the range lambda it did not).
void window_backward(const uint16_t* __restrict p00, const uint16_t* __restrict p01,
                     const uint16_t* __restrict p10, const uint16_t* __restrict m,
                     const uint16_t* __restrict gy, uint16_t* __restrict g00,
                     uint16_t* __restrict g01, uint16_t* __restrict g10, uint16_t* __restrict g11,
                     int64_t c, bool relu) {
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mv = widen(m[ch]), a = widen(p00[ch]), bv = widen(p01[ch]), cv = widen(p10[ch]);
    // Bitwise, not short-circuit, logic: branches would stop the loop vectorizing.
    const bool m_nan = mv != mv;
    const bool e0 = (a == mv) | (m_nan & (a != a));
    const bool e1 = (!e0) & ((bv == mv) | (m_nan & (bv != bv)));
    const bool e2 = (!e0) & (!e1) & ((cv == mv) | (m_nan & (cv != cv)));
    const bool e3 = (!e0) & (!e1) & (!e2);
    const uint16_t g = (!relu) | (mv > 0.0f) ? gy[ch] : uint16_t{0};
    g00[ch] = e0 ? g : uint16_t{0};
    g01[ch] = e1 ? g : uint16_t{0};
    g10[ch] = e2 ? g : uint16_t{0};
    g11[ch] = e3 ? g : uint16_t{0};
  }
}
}  // namespace

// As the float version: each window's gradient goes to its first element equal to the output
// (or the first NaN where the output is NaN; with relu, only where the output is positive), and
// every element of grad_x is written.
template <>
void max_pool2x2_nhwc_backward<bfloat16>(const bfloat16* x, const bfloat16* y,
                                         const bfloat16* grad_y, int64_t n, int64_t h, int64_t w,
                                         int64_t c, bfloat16* grad_x, bool relu) {
  const int64_t oh = h / 2, ow = w / 2;
  const uint16_t* xb = bits(x);
  const uint16_t* yb = bits(y);
  const uint16_t* gyb = bits(grad_y);
  uint16_t* gxb = bits(grad_x);
  // An odd last row or column is outside every window.
  if (h % 2 != 0 || w % 2 != 0) std::fill(gxb, gxb + n * h * w * c, uint16_t{0});
  for_range(n * oh, n * h * w * c > kParallel, [=](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / oh, oy = row % oh;
      for (int64_t ox = 0; ox < ow; ++ox) {
        const int64_t at = ((b * h + 2 * oy) * w + 2 * ox) * c;
        const uint16_t* p00 = xb + at;
        uint16_t* g00 = gxb + at;
        window_backward(p00, p00 + c, p00 + w * c, yb + (row * ow + ox) * c,
                        gyb + (row * ow + ox) * c, g00, g00 + c, g00 + w * c, g00 + w * c + c, c,
                        relu);
      }
    }
  });
}

void relu(const bfloat16* x, bfloat16* y, int64_t n) {
  const uint16_t* xb = bits(x);
  uint16_t* yb = bits(y);
  for_range(n, n > kParallel, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) yb[i] = widen(xb[i]) > 0.0f ? xb[i] : uint16_t{0};
  });
}

void relu_backward(const bfloat16* grad_y, const bfloat16* y, bfloat16* grad_x, int64_t n) {
  const uint16_t* gb = bits(grad_y);
  const uint16_t* yb = bits(y);
  uint16_t* out = bits(grad_x);
  for_range(n, n > kParallel, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = widen(yb[i]) > 0.0f ? gb[i] : uint16_t{0};
  });
}

}  // namespace neutrino::kernels
