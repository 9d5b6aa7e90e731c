// A first convolution layer with few input channels, its relu and the 2x2 max pool after it, in
// one pass for inference. oneDNN runs such a layer (one input channel: 9 multiply-adds per
// output) well below its peak, writes the full-resolution output to memory and the pool reads it
// back, 4x the pooled size. Here each pooled pixel's four conv pixels are computed in registers,
// pooled and written once: y = maxpool2x2(relu(conv3x3(x) + b)).
#include <algorithm>
#include <vector>

#include "neutrino/backend/kernels.h"
#include "neutrino/backend/relu.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

namespace {
// 16 floats: one AVX-512 register (GCC splits it on narrower machines).
using Vec = float __attribute__((vector_size(64)));
constexpr int kLanes = 16;

inline Vec splat(float v) { return Vec{} + v; }
inline Vec load(const float* p) {
  Vec v;
  __builtin_memcpy(&v, p, sizeof(Vec));
  return v;
}
inline void store(float* p, Vec v) { __builtin_memcpy(p, &v, sizeof(Vec)); }
// relu's one rule (backend/relu.h) on a vector: x if x > 0, else 0 (NaN included).
inline Vec relu(Vec a) { return relu_of(a); }
// After relu there is no NaN, so a plain comparison is the pool's rule.
inline Vec larger(Vec a, Vec b) { return a > b ? a : b; }

// Pooled pixels [px, px + kPx) of one pooled row: their 4 * kPx conv pixels in registers, then
// bias, relu and the max of each window. `padded` holds the row's 4 input rows per channel.
template <int kVecs, int kPx>
inline void pooled_pixels(const float* padded, int64_t c, int64_t pw, int64_t px,
                          const float* wt, const float* bias, float* out) {
  constexpr int64_t o = kVecs * kLanes;
  constexpr int kPixels = 4 * kPx;  // (dy, dx) in {0, 1} x {0 .. 2 * kPx - 1}
  Vec acc[kPixels][kVecs] = {};
  for (int64_t ch = 0; ch < c; ++ch) {
    const float* base = padded + ch * 4 * pw + 2 * px;
    for (int ky = 0; ky < 3; ++ky) {
      for (int kx = 0; kx < 3; ++kx) {
        const float* tap = wt + ((ch * 3 + ky) * 3 + kx) * o;
        Vec wv[kVecs];
        for (int v = 0; v < kVecs; ++v) wv[v] = load(tap + v * kLanes);
        for (int p = 0; p < kPixels; ++p) {
          const int dy = p / (2 * kPx), dx = p % (2 * kPx);
          const Vec in = splat(base[(ky + dy) * pw + kx + dx]);
          for (int v = 0; v < kVecs; ++v) acc[p][v] += in * wv[v];
        }
      }
    }
  }
  for (int q = 0; q < kPx; ++q) {
    for (int v = 0; v < kVecs; ++v) {
      const Vec b = bias != nullptr ? load(bias + v * kLanes) : Vec{};
      // relu on each pixel before the max, as the unfused path does: NaN becomes 0 there.
      const Vec r0 = relu(acc[2 * q][v] + b), r1 = relu(acc[2 * q + 1][v] + b);
      const Vec r2 = relu(acc[2 * kPx + 2 * q][v] + b), r3 = relu(acc[2 * kPx + 2 * q + 1][v] + b);
      store(out + (px + q) * o + v * kLanes, larger(larger(r0, r1), larger(r2, r3)));
    }
  }
}

// Pooled rows [begin, end) of every image; rows are numbered image by image. `wt` is the weight
// as (C, 3, 3, O) so that each tap's O outputs are contiguous vectors.
template <int kVecs>
void pooled_rows(const float* x, int64_t c, int64_t h, int64_t w, const float* wt,
                 const float* bias, float* y, int64_t begin, int64_t end) {
  constexpr int64_t o = kVecs * kLanes;
  const int64_t oh = h / 2, ow = w / 2, pw = w + 2;
  // Two input rows of the output plus their neighbours, zero-padded on every side: (C, 4, W + 2).
  std::vector<float> padded(static_cast<size_t>(c * 4 * pw));
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / oh, py = row % oh;
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t r = 0; r < 4; ++r) {
        float* dst = padded.data() + (ch * 4 + r) * pw;
        const int64_t iy = 2 * py - 1 + r;
        dst[0] = dst[pw - 1] = 0.0f;
        if (iy < 0 || iy >= h) {
          std::fill(dst, dst + pw, 0.0f);
        } else {
          std::copy_n(x + ((n * c + ch) * h + iy) * w, w, dst + 1);
        }
      }
    }
    float* out = y + row * ow * o;
    // kPx pooled pixels at a time: each weight vector loaded serves 4 * kPx conv pixels.
    constexpr int kPx = kVecs <= 2 ? 2 : 1;
    int64_t px = 0;
    for (; px + kPx <= ow; px += kPx) pooled_pixels<kVecs, kPx>(padded.data(), c, pw, px, wt, bias, out);
    for (; px < ow; ++px) pooled_pixels<kVecs, 1>(padded.data(), c, pw, px, wt, bias, out);
  }
}
}  // namespace

bool conv3x3_relu_max_pool2x2_supported(int64_t in_c, int64_t out_c) {
  return in_c >= 1 && in_c <= 4 && out_c % kLanes == 0 && out_c / kLanes >= 1 &&
         out_c / kLanes <= 4;
}

void conv3x3_relu_max_pool2x2(const float* x, int64_t n, int64_t c, int64_t h, int64_t w,
                              const float* weight, const float* bias, int64_t out_c, float* y) {
  std::vector<float> wt(static_cast<size_t>(c * 9 * out_c));
  for (int64_t oc = 0; oc < out_c; ++oc) {
    for (int64_t i = 0; i < c * 9; ++i) wt[i * out_c + oc] = weight[oc * c * 9 + i];
  }
  const int64_t rows = n * (h / 2);
  auto run = [&](int64_t begin, int64_t end) {
    switch (out_c / kLanes) {
      case 1: return pooled_rows<1>(x, c, h, w, wt.data(), bias, y, begin, end);
      case 2: return pooled_rows<2>(x, c, h, w, wt.data(), bias, y, begin, end);
      case 3: return pooled_rows<3>(x, c, h, w, wt.data(), bias, y, begin, end);
      default: return pooled_rows<4>(x, c, h, w, wt.data(), bias, y, begin, end);
    }
  };
  // A batch-1 layer stays on the calling thread.
  parallel_for(rows, n * c * h * w * out_c * 9 >= kGrainFusedConvMacs, run);
}

}  // namespace neutrino::kernels
