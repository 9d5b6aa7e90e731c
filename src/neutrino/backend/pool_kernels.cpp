// Pooling kernels over (planes, H, W) images: the general max/average pool with any window,
// stride, padding and dilation, and fast paths for the common 2x2, stride-2 max pool in NCHW and
// channels-last (NHWC) memory.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"
#include "neutrino/backend/relu.h"

namespace neutrino::kernels {

namespace {
// Calls f(oy, ox, y0, y1, x0, x1) with each window clipped to the image; the unclipped window
// size is kernel_h * kernel_w.
template <class F>
void for_each_window(const ConvGeometry& g, F f) {
  for (int64_t oy = 0; oy < g.out_h; ++oy) {
    const int64_t ys = oy * g.stride_h - g.pad_top;
    const int64_t y0 = std::max<int64_t>(ys, 0);
    const int64_t y1 = std::min<int64_t>(ys + (g.kernel_h - 1) * g.dilation_h + 1, g.height);
    for (int64_t ox = 0; ox < g.out_w; ++ox) {
      const int64_t xs = ox * g.stride_w - g.pad_left;
      const int64_t x0 = std::max<int64_t>(xs, 0);
      const int64_t x1 = std::min<int64_t>(xs + (g.kernel_w - 1) * g.dilation_w + 1, g.width);
      f(oy, ox, ys, xs, y0, y1, x0, x1);
    }
  }
}
// Number of padded positions the window covers when padding counts (clipped to the padded area).
int64_t padded_window_size(const ConvGeometry& g, int64_t ys, int64_t xs) {
  const int64_t y_end = std::min(ys + g.kernel_h, g.height + g.pad_bottom);
  const int64_t x_end = std::min(xs + g.kernel_w, g.width + g.pad_right);
  return (y_end - ys) * (x_end - xs);
}
}  // namespace

namespace {
// a if it wins against b under max-pooling's rule: larger, or NaN (NaN propagates).
template <class T>
inline T pool_max(T a, T b) {
  return (a > b || a != a) ? a : b;
}
}  // namespace



bool is_pool2x2(const ConvGeometry& g) {
  return g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 &&
         g.pad_top == 0 && g.pad_left == 0 && g.dilation_h == 1 && g.dilation_w == 1;
}

// Straight-line code over pairs of rows, without the general loop's bounds and dilation checks
// and without writing an index per window (the backward finds the winner again), so it streams
// at memory speed.
template <class T>
void max_pool2x2(const T* x, const ConvGeometry& g, T* y) {
  const bool even = g.height % 2 == 0 && g.width % 2 == 0;
  parallel_for(g.planes(), g.planes() * g.height * g.width > kGrainElements,
               [&](int64_t first, int64_t last) {
  for (int64_t c = first; c < last; ++c) {
    const T* plane = x + c * g.height * g.width;
    T* out = y + c * g.out_h * g.out_w;
    if (even) {
      // Two flat passes that vectorize even for narrow planes (a 14-wide row is too short for one
      // AVX-512 register): the max of each pair of rows, then of each pair of neighbours.
      thread_local std::vector<T> rows;
      rows.resize(static_cast<size_t>(g.out_h * g.width));
      T* v = rows.data();
      for (int64_t oy = 0; oy < g.out_h; ++oy) {
        const T* r0 = plane + 2 * oy * g.width;
        const T* r1 = r0 + g.width;
        T* vo = v + oy * g.width;
        for (int64_t i = 0; i < g.width; ++i) vo[i] = pool_max(r0[i], r1[i]);
      }
      for (int64_t j = 0, n = g.out_h * g.out_w; j < n; ++j) out[j] = pool_max(v[2 * j], v[2 * j + 1]);
      continue;
    }
    for (int64_t oy = 0; oy < g.out_h; ++oy) {
      const T* r0 = plane + 2 * oy * g.width;
      const T* r1 = r0 + g.width;
      T* o = out + oy * g.out_w;
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        o[ox] = pool_max(pool_max(pool_max(r0[2 * ox], r0[2 * ox + 1]), r1[2 * ox]), r1[2 * ox + 1]);
      }
    }
  }
  });
}

// The gradient of each window goes to its first element equal to the window's output (the first
// maximum, or the first NaN where the output is NaN); every input element is written, so grad_x
// needs no zeroing.
template <class T>
void max_pool2x2_backward(const T* x, const T* y, const T* grad_y, const ConvGeometry& g,
                          T* grad_x) {
parallel_for(g.planes(), true, [&](int64_t first, int64_t last) {
  for (int64_t c = first; c < last; ++c) {
    const T* plane = x + c * g.height * g.width;
    T* gplane = grad_x + c * g.height * g.width;
    const T* out = y + c * g.out_h * g.out_w;
    const T* gout = grad_y + c * g.out_h * g.out_w;
    for (int64_t oy = 0; oy < g.out_h; ++oy) {
      const T* r0 = plane + 2 * oy * g.width;
      const T* r1 = r0 + g.width;
      T* g0 = gplane + 2 * oy * g.width;
      T* g1 = g0 + g.width;
      const T* yo = out + oy * g.out_w;
      const T* go = gout + oy * g.out_w;
      for (int64_t ox = 0; ox < g.out_w; ++ox) {
        const T m = yo[ox], grad = go[ox];
        const T a = r0[2 * ox], b = r0[2 * ox + 1], c0 = r1[2 * ox];
        // Equal to the output, or NaN where the output is NaN; the first such wins.
        const bool m_nan = m != m;
        const bool ea = a == m || (m_nan && a != a);
        const bool eb = !ea && (b == m || (m_nan && b != b));
        const bool ec = !ea && !eb && (c0 == m || (m_nan && c0 != c0));
        const bool ed = !ea && !eb && !ec;
        g0[2 * ox] = ea ? grad : T(0);
        g0[2 * ox + 1] = eb ? grad : T(0);
        g1[2 * ox] = ec ? grad : T(0);
        g1[2 * ox + 1] = ed ? grad : T(0);
      }
      const int64_t top = 2 * oy * g.width;
      // An odd last column is outside every window.
      if (g.width % 2 != 0) {
        gplane[top + g.width - 1] = T(0);
        gplane[top + 2 * g.width - 1] = T(0);
      }
    }
    // So is an odd last row.
    if (g.height % 2 != 0) {
      std::fill(gplane + (g.height - 1) * g.width, gplane + g.height * g.width, T(0));
    }
  }
  });
}

// The channels-last kernels are written once over a storage type S and a codec that reads S as
// arithmetic: float and double as themselves, bfloat16 as its raw bits widened to float. A bf16
// winner is copied back exactly (the max of bf16 values is one). Code over the bfloat16 class
// itself did not vectorize (the pool ran 5x slower than float32); over uint16_t bits it does.
namespace {
template <class S>
struct Plain {
  using Storage = S;
  static S load(S v) { return v; }
  static S store(S v) { return v; }
};
struct Bf16Bits {
  using Storage = uint16_t;
  static float load(uint16_t bits) { return bf16_bits_to_float(bits); }
  static uint16_t store(float v) { return static_cast<uint16_t>(std::bit_cast<uint32_t>(v) >> 16); }
};

template <class Codec, class S = typename Codec::Storage>
void max_pool2x2_nhwc_impl(const S* x, int64_t n, int64_t h, int64_t w, int64_t c, S* y,
                           bool relu) {
  using V = decltype(Codec::load(S{}));
  const int64_t oh = h / 2, ow = w / 2;
  parallel_for(n * oh, n * h * w * c > kGrainElements, [=](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / oh, oy = row % oh;
      const S* __restrict top = x + (b * h + 2 * oy) * w * c;
      const S* __restrict bottom = top + w * c;
      S* __restrict out = y + row * ow * c;
      for (int64_t ox = 0; ox < ow; ++ox) {
        const int64_t at = 2 * ox * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          // A tree, not a chain: two compares deep instead of three.
          const V m = pool_max(pool_max(Codec::load(top[at + ch]), Codec::load(top[at + c + ch])),
                               pool_max(Codec::load(bottom[at + ch]),
                                        Codec::load(bottom[at + c + ch])));
          out[ox * c + ch] = Codec::store(relu ? relu_of(m) : m);
        }
      }
    }
  });
}

// One 2x2 window's c channels: the first element equal to the output (or NaN where it is NaN)
// takes the gradient; with relu, only where the output is positive. A function of its own with
// restrict pointers and bitwise logic, so that it vectorizes over channels (inside the parallel
// loop, with && chains, it did not: 4x slower).
template <class Codec, class S = typename Codec::Storage>
void window_backward(const S* __restrict p00, const S* __restrict p01, const S* __restrict p10,
                     const S* __restrict m, const S* __restrict gy, S* __restrict g00,
                     S* __restrict g01, S* __restrict g10, S* __restrict g11, int64_t c,
                     bool relu) {
  using V = decltype(Codec::load(S{}));
  for (int64_t ch = 0; ch < c; ++ch) {
    const V mv = Codec::load(m[ch]), a = Codec::load(p00[ch]), b = Codec::load(p01[ch]),
            d = Codec::load(p10[ch]);
    const bool m_nan = mv != mv;
    const bool e0 = (a == mv) | (m_nan & (a != a));
    const bool e1 = (!e0) & ((b == mv) | (m_nan & (b != b)));
    const bool e2 = (!e0) & (!e1) & ((d == mv) | (m_nan & (d != d)));
    const bool e3 = (!e0) & (!e1) & (!e2);
    // Zero has all-zero bits in every storage type.
    const S g = ((!relu) | relu_passes(mv)) ? gy[ch] : S{0};
    g00[ch] = e0 ? g : S{0};
    g01[ch] = e1 ? g : S{0};
    g10[ch] = e2 ? g : S{0};
    g11[ch] = e3 ? g : S{0};
  }
}

template <class Codec, class S = typename Codec::Storage>
void max_pool2x2_nhwc_backward_impl(const S* x, const S* y, const S* grad_y, int64_t n, int64_t h,
                                    int64_t w, int64_t c, S* grad_x, bool relu) {
  const int64_t oh = h / 2, ow = w / 2;
  // An odd last row or column is outside every window.
  if (h % 2 != 0 || w % 2 != 0) std::fill(grad_x, grad_x + n * h * w * c, S{0});
  parallel_for(n * oh, n * h * w * c > kGrainElements, [=](int64_t first, int64_t last) {
  for (int64_t row = first; row < last; ++row) {
    const int64_t b = row / oh, oy = row % oh;
    for (int64_t ox = 0; ox < ow; ++ox) {
      const int64_t at = ((b * h + 2 * oy) * w + 2 * ox) * c;
      const S* p00 = x + at;
      S* g00 = grad_x + at;
      window_backward<Codec>(p00, p00 + c, p00 + w * c, y + (row * ow + ox) * c,
                             grad_y + (row * ow + ox) * c, g00, g00 + c, g00 + w * c,
                             g00 + w * c + c, c, relu);
    }
  }
  });
}

}  // namespace

template <class T>
void max_pool2x2_nhwc(const T* x, int64_t n, int64_t h, int64_t w, int64_t c, T* y, bool relu) {
  max_pool2x2_nhwc_impl<Plain<T>>(x, n, h, w, c, y, relu);
}

template <>
void max_pool2x2_nhwc<bfloat16>(const bfloat16* x, int64_t n, int64_t h, int64_t w, int64_t c,
                                bfloat16* y, bool relu) {
  max_pool2x2_nhwc_impl<Bf16Bits>(bf16_bits(x), n, h, w, c, bf16_bits(y), relu);
}

template <class T>
void max_pool2x2_nhwc_backward(const T* x, const T* y, const T* grad_y, int64_t n, int64_t h,
                               int64_t w, int64_t c, T* grad_x, bool relu) {
  max_pool2x2_nhwc_backward_impl<Plain<T>>(x, y, grad_y, n, h, w, c, grad_x, relu);
}

template <>
void max_pool2x2_nhwc_backward<bfloat16>(const bfloat16* x, const bfloat16* y,
                                         const bfloat16* grad_y, int64_t n, int64_t h, int64_t w,
                                         int64_t c, bfloat16* grad_x, bool relu) {
  max_pool2x2_nhwc_backward_impl<Bf16Bits>(bf16_bits(x), bf16_bits(y), bf16_bits(grad_y), n, h,
                                           w, c, bf16_bits(grad_x), relu);
}

template <class T>
void max_pool2d(const T* x, const ConvGeometry& g, T* y, int64_t* indices) {
parallel_for(g.planes(), true, [&](int64_t first, int64_t last) {
  for (int64_t c = first; c < last; ++c) {
    const T* plane = x + c * g.height * g.width;
    T* out = y + c * g.out_h * g.out_w;
    int64_t* idx = indices + c * g.out_h * g.out_w;
    for_each_window(g, [&](int64_t oy, int64_t ox, int64_t ys, int64_t xs, int64_t y0,
                           int64_t y1, int64_t x0, int64_t x1) {
      T best = -std::numeric_limits<T>::infinity();
      int64_t best_at = -1;
      const bool dilated = g.dilation_h != 1 || g.dilation_w != 1;
      for (int64_t iy = y0; iy < y1; ++iy) {
        if (dilated && (iy - ys) % g.dilation_h != 0) continue;
        const T* row = plane + iy * g.width;
        for (int64_t ix = x0; ix < x1; ++ix) {
          if (dilated && (ix - xs) % g.dilation_w != 0) continue;
          // The first maximum wins; NaN propagates, as in PyTorch.
          if (row[ix] > best || best_at < 0 || std::isnan(row[ix])) {
            best = row[ix];
            best_at = iy * g.width + ix;
            if (std::isnan(best)) break;
          }
        }
      }
      out[oy * g.out_w + ox] = best;
      idx[oy * g.out_w + ox] = best_at;
    });
  }
  });
}

template <class T>
void max_pool2d_backward(const T* grad_y, const int64_t* indices, const ConvGeometry& g,
                         T* grad_x) {
  const int64_t out_plane = g.out_h * g.out_w;
parallel_for(g.planes(), true, [&](int64_t first, int64_t last) {
  for (int64_t c = first; c < last; ++c) {
    T* gx = grad_x + c * g.height * g.width;
    for (int64_t i = 0; i < out_plane; ++i) {
      const int64_t at = indices[c * out_plane + i];
      if (at >= 0) gx[at] += grad_y[c * out_plane + i];
    }
  }
  });
}

template <class T>
void avg_pool2d(const T* x, const ConvGeometry& g, bool count_include_pad, T* y) {
parallel_for(g.planes(), true, [&](int64_t first, int64_t last) {
  for (int64_t c = first; c < last; ++c) {
    const T* plane = x + c * g.height * g.width;
    T* out = y + c * g.out_h * g.out_w;
    for_each_window(g, [&](int64_t oy, int64_t ox, int64_t ys, int64_t xs, int64_t y0,
                           int64_t y1, int64_t x0, int64_t x1) {
      T total = 0;
      for (int64_t iy = y0; iy < y1; ++iy) {
        for (int64_t ix = x0; ix < x1; ++ix) total += plane[iy * g.width + ix];
      }
      const int64_t count = count_include_pad ? padded_window_size(g, ys, xs) : (y1 - y0) * (x1 - x0);
      out[oy * g.out_w + ox] = count > 0 ? total / static_cast<T>(count) : T(0);
    });
  }
  });
}

template <class T>
void avg_pool2d_backward(const T* grad_y, const ConvGeometry& g, bool count_include_pad,
                         T* grad_x) {
parallel_for(g.planes(), true, [&](int64_t first, int64_t last) {
  for (int64_t c = first; c < last; ++c) {
    T* gx = grad_x + c * g.height * g.width;
    const T* gy = grad_y + c * g.out_h * g.out_w;
    for_each_window(g, [&](int64_t oy, int64_t ox, int64_t ys, int64_t xs, int64_t y0,
                           int64_t y1, int64_t x0, int64_t x1) {
      const int64_t count = count_include_pad ? padded_window_size(g, ys, xs) : (y1 - y0) * (x1 - x0);
      if (count == 0) return;
      const T share = gy[oy * g.out_w + ox] / static_cast<T>(count);
      for (int64_t iy = y0; iy < y1; ++iy) {
        for (int64_t ix = x0; ix < x1; ++ix) gx[iy * g.width + ix] += share;
      }
    });
  }
  });
}

#define NEUTRINO_INSTANTIATE(T)                                                                  \
  template void max_pool2d<T>(const T*, const ConvGeometry&, T*, int64_t*);                      \
  template void max_pool2x2<T>(const T*, const ConvGeometry&, T*);                               \
  template void max_pool2x2_nhwc<T>(const T*, int64_t, int64_t, int64_t, int64_t, T*, bool);       \
  template void max_pool2x2_nhwc_backward<T>(const T*, const T*, const T*, int64_t, int64_t,       \
                                             int64_t, int64_t, T*, bool);                         \
  template void max_pool2x2_backward<T>(const T*, const T*, const T*, const ConvGeometry&, T*);  \
  template void max_pool2d_backward<T>(const T*, const int64_t*, const ConvGeometry&, T*);       \
  template void avg_pool2d<T>(const T*, const ConvGeometry&, bool, T*);                          \
  template void avg_pool2d_backward<T>(const T*, const ConvGeometry&, bool, T*);

NEUTRINO_INSTANTIATE(float)
NEUTRINO_INSTANTIATE(double)
#undef NEUTRINO_INSTANTIATE

}  // namespace neutrino::kernels
