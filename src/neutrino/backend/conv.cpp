// The convolution entries: dispatch by dtype and layout, and the float64 reference (im2col + one
// GEMM per group over the whole batch). The float32 and bfloat16 kernels are oneDNN's
// (dnnl_conv.cpp).
#include <algorithm>
#include <memory>

#include "neutrino/backend/dnnl_conv.h"
#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

namespace {
// The reference convolution runs as one GEMM per group over the whole batch: the columns of
// every image sit side by side in a (C/groups * KH * KW, N * OH * OW) matrix, so the GEMM is
// large. Image-wise loops (im2col, col2im, the reordering between (N, O, plane) and
// (O, N * plane)) run in parallel over images.
template <class T>
void batch_im2col(const T* x, const ConvGeometry& g, int64_t grp, T* cols) {
  const int64_t ld = g.batch * g.out_plane();
  parallel_for(g.batch, true, [&](int64_t first, int64_t last) {
    for (int64_t n = first; n < last; ++n) {
      im2col(x + (n * g.channels + grp * g.group_channels()) * g.in_plane(), g,
             cols + n * g.out_plane(), ld);
    }
  });
}

// (N, O, plane) rows of group `grp` -> (O/groups, N * plane).
template <class T>
void gather_group(const T* y, const ConvGeometry& g, int64_t grp, T* out) {
  const int64_t plane = g.out_plane(), ld = g.batch * plane, og = g.group_out_channels();
  parallel_for(g.batch, true, [&](int64_t first, int64_t last) {
    for (int64_t n = first; n < last; ++n) {
      for (int64_t o = 0; o < og; ++o) {
        const T* from = y + (n * g.out_channels + grp * og + o) * plane;
        std::copy(from, from + plane, out + o * ld + n * plane);
      }
    }
  });
}

// y = W_g @ columns_g per group, then (O/groups, N * plane) -> (N, O, plane) adding the bias on
// the way out, then relu.
template <class T>
void reference_forward(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y,
                       bool relu) {
  const int64_t og = g.group_out_channels(), kdim = g.kdim(), plane = g.out_plane();
  const int64_t ld = g.batch * plane;
  std::unique_ptr<T[]> cols(new T[kdim * ld]), y_g(new T[og * ld]);
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    batch_im2col(x, g, grp, cols.get());
    gemm(og, ld, kdim, w + grp * og * kdim, kdim, 1, cols.get(), ld, 1, y_g.get(), false);
    parallel_for(g.batch, true, [&](int64_t first, int64_t last) {
      for (int64_t n = first; n < last; ++n) {
        for (int64_t o = 0; o < og; ++o) {
          const int64_t channel = grp * og + o;
          const T shift = b != nullptr ? b[channel] : T(0);
          const T* from = y_g.get() + o * ld + n * plane;
          T* to = y + (n * g.out_channels + channel) * plane;
          for (int64_t i = 0; i < plane; ++i) to[i] = from[i] + shift;
        }
      }
    });
  }
  if (relu) unary(Unary::kRelu, y, y, g.batch * g.out_channels * plane);
}

// grad_x = col2im(W_g^T @ grad_y_g), one GEMM per group.
template <class T>
void reference_backward_data(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
  const int64_t og = g.group_out_channels(), kdim = g.kdim(), ld = g.batch * g.out_plane();
  std::fill(gx, gx + g.batch * g.channels * g.in_plane(), T(0));
  std::unique_ptr<T[]> cols(new T[kdim * ld]), gy_g(new T[og * ld]);
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    gather_group(gy, g, grp, gy_g.get());
    gemm(kdim, ld, og, w + grp * og * kdim, 1, kdim, gy_g.get(), ld, 1, cols.get(), false);
    parallel_for(g.batch, true, [&](int64_t first, int64_t last) {
      for (int64_t n = first; n < last; ++n) {
        col2im(cols.get() + n * g.out_plane(), g,
               gx + (n * g.channels + grp * g.group_channels()) * g.in_plane(), ld);
      }
    });
  }
}

// grad_W_g = grad_y_g @ columns^T, summed over the batch inside one GEMM; grad_b sums grad_y
// over the batch and the plane.
template <class T>
void reference_backward_weights(const ConvGeometry& g, const T* x, const T* gy, T* gw, T* gb) {
  const int64_t og = g.group_out_channels(), kdim = g.kdim(), plane = g.out_plane();
  const int64_t ld = g.batch * plane;
  std::unique_ptr<T[]> cols(new T[kdim * ld]), gy_g(new T[og * ld]);
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    batch_im2col(x, g, grp, cols.get());
    gather_group(gy, g, grp, gy_g.get());
    gemm(og, kdim, ld, gy_g.get(), ld, 1, cols.get(), 1, ld, gw + grp * og * kdim, false);
  }
  if (gb == nullptr) return;
  const Shape shape{g.batch, g.out_channels, plane}, keep{1, g.out_channels, 1};
  reduce_sum(gy, shape, keep, gb);
}
}  // namespace

bool conv2d_prefers_channels_last(DType dtype) { return dtype != DType::kFloat64; }

void conv2d_forward(const ConvGeometry& g, const ConvLayout& l, const void* x, const void* w,
                    const void* bias, void* y, bool relu, bool training) {
  if (l.x_dtype == DType::kFloat64) {
    return reference_forward(g, static_cast<const double*>(x), static_cast<const double*>(w),
                             static_cast<const double*>(bias), static_cast<double*>(y), relu);
  }
  dnnl_conv2d_forward(g, l, x, static_cast<const float*>(w), static_cast<const float*>(bias), y,
                      relu, training);
}

void conv2d_backward_data(const ConvGeometry& g, const ConvLayout& l, const void* gy,
                          const void* w, void* gx) {
  if (l.y_dtype == DType::kFloat64) {
    return reference_backward_data(g, static_cast<const double*>(gy),
                                   static_cast<const double*>(w), static_cast<double*>(gx));
  }
  dnnl_conv2d_backward_data(g, l, gy, static_cast<const float*>(w), gx);
}

void conv2d_backward_weights(const ConvGeometry& g, const ConvLayout& l, const void* x,
                             const void* gy, void* gw, void* gb) {
  if (l.y_dtype == DType::kFloat64) {
    return reference_backward_weights(g, static_cast<const double*>(x),
                                      static_cast<const double*>(gy), static_cast<double*>(gw),
                                      static_cast<double*>(gb));
  }
  // oneDNN's float32 channels-last weight backward sums the bias gradient in a plain scalar loop
  // on one core (2.5 of its 3.4 ms for the benchmark's first layer); a channel sum of our own
  // costs a fraction of that. Its bf16 kernel sums it in the same pass, for free.
  const bool own_bias = gb != nullptr && l.y_dtype == DType::kFloat32 && l.y_nhwc;
  float* gwf = static_cast<float*>(gw);
  float* gbf = static_cast<float*>(gb);
  dnnl_conv2d_backward_weights(g, l, x, gy, gwf, own_bias ? nullptr : gbf);
  if (own_bias) {
    channel_sums(static_cast<const float*>(gy), g.batch * g.out_plane(), g.out_channels, gbf);
  }
}

}  // namespace neutrino::kernels
