// Neural-network ops: convolution, pooling, normalization, dropout.
#include <algorithm>
#include <cmath>
#include <memory>

#include "neutrino/backend/kernels.h"
#include "neutrino/core/precision.h"
#include "neutrino/core/random.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

namespace detail {

bool is_channels_last(const Tensor& t) {
  if (t.dim() != 4) return false;
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  // Expected strides of NHWC memory, checked only where the dim has more than one element.
  const int64_t expected[4] = {s[2] * s[3] * s[1], 1, s[3] * s[1], s[1]};
  for (int d = 0; d < 4; ++d) {
    if (s[d] > 1 && st[d] != expected[d]) return false;
  }
  return true;
}

Tensor empty_channels_last(const Shape& nchw, DType dtype) {
  const Tensor base = Tensor::empty({nchw[0], nchw[2], nchw[3], nchw[1]}, dtype);
  return base.view_as(nchw, {nchw[2] * nchw[3] * nchw[1], 1, nchw[3] * nchw[1], nchw[1]}, 0);
}

Tensor to_channels_last(const Tensor& t) {
  if (is_channels_last(t)) return t;
  const Tensor nhwc = materialize(permute(t.detach(), {0, 2, 3, 1}));
  const Shape& s = t.shape();
  return nhwc.view_as(s, {s[2] * s[3] * s[1], 1, s[3] * s[1], s[1]}, nhwc.offset());
}

Tensor dense_nchw_or_nhwc(const Tensor& t) {
  return t.is_contiguous() || is_channels_last(t) ? t : materialize(t);
}

Tensor empty_same_layout(const Tensor& dense) {
  return dense.is_contiguous() ? Tensor::empty(dense.shape(), dense.dtype())
                               : empty_channels_last(dense.shape(), dense.dtype());
}

// Keeps the layout so that the conv backward reads it without a reorder.
Tensor relu_backward(const Tensor& g, const Tensor& y) {
  const bool same_layout = g.dtype() == y.dtype() && g.shape() == y.shape() &&
                           g.strides() == y.strides() && (g.is_contiguous() || is_channels_last(g));
  if (!same_layout) {
    if (g.dtype() == DType::kBFloat16 || y.dtype() == DType::kBFloat16) {
      // to() makes both contiguous, so this comes back through the kernel below.
      return relu_backward(g.to(DType::kFloat32), y.to(DType::kFloat32)).to(g.dtype());
    }
    return mul(g, apply_unary(y, static_cast<int>(kernels::Unary::kStep), "relu"));
  }
  Tensor out = empty_same_layout(g);
  if (g.dtype() == DType::kBFloat16) {
    kernels::relu_backward(g.data<bfloat16>(), y.data<bfloat16>(), out.data<bfloat16>(), g.numel());
    return out;
  }
  dispatch_float(g.dtype(), "relu", [&]<class T>() {
    const T* gp = g.data<T>();
    const T* yp = y.data<T>();
    T* o = out.data<T>();
    const int64_t n = g.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) o[i] = yp[i] > T(0) ? gp[i] : T(0);
  });
  return out;
}

}  // namespace detail

namespace {

int64_t window_out(int64_t in, int64_t pad0, int64_t pad1, int64_t kernel, int64_t dilation,
                   int64_t stride) {
  return (in + pad0 + pad1 - dilation * (kernel - 1) - 1) / stride + 1;
}

struct ConvShapes {
  int64_t batch, in_c, out_c, groups;
  kernels::ConvGeometry geo;  // per group
  int64_t out_per_group;      // output channels per group
  int64_t kdim;               // rows of a group's im2col matrix: C/groups * KH * KW
  int64_t plane;              // output pixels per channel: OH * OW
};

ConvShapes conv_shapes(const Shape& x, const Shape& w, const Conv2dParams& p) {
  ConvShapes s{};
  s.batch = x[0];
  s.in_c = x[1];
  s.out_c = w[0];
  s.groups = p.groups;
  s.geo = {x[1] / p.groups, x[2], x[3], w[2], w[3],
           window_out(x[2], p.pad_top, p.pad_bottom, w[2], p.dilation_h, p.stride_h),
           window_out(x[3], p.pad_left, p.pad_right, w[3], p.dilation_w, p.stride_w),
           p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.dilation_h, p.dilation_w};
  s.out_per_group = s.out_c / s.groups;
  s.kdim = s.geo.channels * s.geo.kernel_h * s.geo.kernel_w;
  s.plane = s.geo.out_h * s.geo.out_w;
  return s;
}

// x_nhwc / y_nhwc: whether the x-shaped and y-shaped buffers handed to oneDNN are channels-last.
// A tensor that is both (one channel, as a first layer's input) counts as channels-last: oneDNN
// has no fast training kernel for plain input with channels-last output.
kernels::ConvProblem conv_problem(const ConvShapes& s, const Conv2dParams& p, const Tensor& x_like,
                                  const Tensor& y_like) {
  const auto& g = s.geo;
  return {s.batch, s.in_c, g.height, g.width, s.out_c, g.kernel_h, g.kernel_w, g.out_h, g.out_w,
          p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right,
          p.dilation_h, p.dilation_w, p.groups, is_channels_last(x_like),
          is_channels_last(y_like), x_like.dtype() == DType::kBFloat16,
          y_like.dtype() == DType::kBFloat16};
}

// A bfloat16 input (mixed precision) takes float32 weights: they are the master copy.
void check_conv_dtypes(const Tensor& x, const Tensor& w, const char* what) {
  if (x.dtype() != DType::kBFloat16) return check_same_float(x, w, "conv2d");
  NEUTRINO_CHECK_VALUE(w.defined() && w.dtype() == DType::kFloat32,
                       "conv2d: a bfloat16 input {} takes a float32 {}, got {}", x.shape_string(),
                       what, w.defined() ? dtype_name(w.dtype()) : "an undefined tensor");
}

void check_conv(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  check_conv_dtypes(x, w, "weight");
  NEUTRINO_CHECK_SHAPE(x.dim() == 4, "conv2d: input must be 4-D (N, C, H, W), got {}",
                       x.shape_string());
  NEUTRINO_CHECK_SHAPE(w.dim() == 4, "conv2d: weight must be 4-D (O, C/groups, KH, KW), got {}",
                       w.shape_string());
  NEUTRINO_CHECK_VALUE(p.groups >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 &&
                           p.dilation_w >= 1 && p.pad_top >= 0 && p.pad_left >= 0 &&
                           p.pad_bottom >= 0 && p.pad_right >= 0,
                       "conv2d: groups, strides and dilations must be >= 1 and padding >= 0");
  NEUTRINO_CHECK_SHAPE(x.size(1) % p.groups == 0 && w.size(0) % p.groups == 0 &&
                           w.size(1) * p.groups == x.size(1),
                       "conv2d: input {} has {} channels but weight {} expects {} (groups {})",
                       x.shape_string(), x.size(1), w.shape_string(), w.size(1) * p.groups,
                       p.groups);
  const ConvShapes s = conv_shapes(x.shape(), w.shape(), p);
  NEUTRINO_CHECK_SHAPE(s.geo.out_h > 0 && s.geo.out_w > 0,
                       "conv2d: input {} is too small for kernel {} with this padding/dilation",
                       x.shape_string(), w.shape_string());
}

// The convolution runs as one GEMM per group over the whole batch: the columns of every image
// sit side by side in a (C/groups * KH * KW, N * OH * OW) matrix, so the GEMM is large enough
// for oneDNN to use both cores well. Image-wise loops (im2col, col2im, the reordering between
// (N, O, plane) and (O, N * plane)) run in parallel over images.

template <class T>
void batch_im2col(const T* x, const ConvShapes& s, int64_t grp, T* cols) {
  const auto& g = s.geo;
  const int64_t ld = s.batch * s.plane;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < s.batch; ++n) {
    kernels::im2col(x + (n * s.in_c + grp * g.channels) * g.height * g.width, g, cols + n * s.plane, ld);
  }
}

// (N, O, plane) rows of group `grp` -> (O/groups, N * plane).
template <class T>
void gather_group(const T* y, const ConvShapes& s, int64_t grp, T* out) {
  const int64_t ld = s.batch * s.plane;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t o = 0; o < s.out_per_group; ++o) {
      const T* from = y + (n * s.out_c + grp * s.out_per_group + o) * s.plane;
      std::copy(from, from + s.plane, out + o * ld + n * s.plane);
    }
  }
}

// grad_x = col2im(W_g^T @ grad_y_g), one GEMM per group.
Tensor conv2d_input_grad(const Tensor& gy, const Tensor& w, const Shape& x_shape,
                         const Conv2dParams& p, bool x_nhwc) {
  const ConvShapes s = conv_shapes(x_shape, w.shape(), p);
  const auto& g = s.geo;
  const int64_t og = s.out_per_group, kdim = s.kdim, ld = s.batch * s.plane;
  if (gy.dtype() == DType::kFloat32 || gy.dtype() == DType::kBFloat16) {
    // gx takes x's layout (and dtype: a bf16 network's x and y are both bf16); gy is read in
    // whichever of the two layouts it has.
    const Tensor gyd = dense_nchw_or_nhwc(gy), wd = materialize(w);
    Tensor gx = x_nhwc ? empty_channels_last(x_shape, gy.dtype()) : Tensor::empty(x_shape, gy.dtype());
    kernels::conv2d_backward_data(conv_problem(s, p, gx, gyd), gyd.raw_data(), wd.data<float>(),
                                  gx.raw_data());
    return gx;
  }
  Tensor gyc = materialize(gy), wc = materialize(w);
  Tensor gx = Tensor::zeros(x_shape, gy.dtype());
  dispatch_float(gy.dtype(), "conv2d", [&]<class T>() {
    std::unique_ptr<T[]> cols(new T[kdim * ld]), gy_g(new T[og * ld]);
    for (int64_t grp = 0; grp < s.groups; ++grp) {
      gather_group(gyc.data<T>(), s, grp, gy_g.get());
      kernels::gemm(kdim, ld, og, wc.data<T>() + grp * og * kdim, 1, kdim, gy_g.get(), ld, 1,
                    cols.get(), false);
      T* base = gx.data<T>();
#pragma omp parallel for schedule(static)
      for (int64_t n = 0; n < s.batch; ++n) {
        kernels::col2im(cols.get() + n * s.plane, g,
                        base + (n * s.in_c + grp * g.channels) * g.height * g.width, ld);
      }
    }
  });
  return gx;
}

// grad_W_g = grad_y_g @ columns^T, summed over the batch inside one GEMM. On oneDNN the bias
// gradient comes from the same pass when `gb` is given.
Tensor conv2d_weight_grad(const Tensor& gy, const Tensor& x, const Shape& w_shape,
                          const Conv2dParams& p, Tensor* gb = nullptr) {
  const ConvShapes s = conv_shapes(x.shape(), w_shape, p);
  const int64_t og = s.out_per_group, kdim = s.kdim, ld = s.batch * s.plane;
  if (gy.dtype() == DType::kFloat32 || gy.dtype() == DType::kBFloat16) {
    // Weight and bias gradients are float32, like the weights, whatever the activations are.
    const Tensor gyd = dense_nchw_or_nhwc(gy), xd = dense_nchw_or_nhwc(x);
    Tensor gw = Tensor::empty(w_shape, DType::kFloat32);
    if (gb != nullptr) *gb = Tensor::empty({s.out_c}, DType::kFloat32);
    // oneDNN's float32 channels-last weight backward sums the bias gradient in a plain scalar
    // loop on one core (2.5 of its 3.4 ms for the benchmark's first layer); a channel sum of our
    // own costs a fraction of that. Its bf16 kernel sums it in the same pass, for free.
    const bool own_bias = gb != nullptr && gyd.dtype() == DType::kFloat32 && is_channels_last(gyd);
    kernels::conv2d_backward_weights(conv_problem(s, p, xd, gyd), xd.raw_data(), gyd.raw_data(),
                                     gw.data<float>(),
                                     gb != nullptr && !own_bias ? gb->data<float>() : nullptr);
    if (own_bias) {
      kernels::channel_sums(gyd.data<float>(), s.batch * s.plane, s.out_c, gb->data<float>());
    }
    return gw;
  }
  Tensor gyc = materialize(gy), xc = materialize(x);
  if (gb != nullptr) *gb = sum(gy, {0, 2, 3});
  Tensor gw = Tensor::zeros(w_shape, gy.dtype());
  dispatch_float(gy.dtype(), "conv2d", [&]<class T>() {
    std::unique_ptr<T[]> cols(new T[kdim * ld]), gy_g(new T[og * ld]);
    for (int64_t grp = 0; grp < s.groups; ++grp) {
      batch_im2col(xc.data<T>(), s, grp, cols.get());
      gather_group(gyc.data<T>(), s, grp, gy_g.get());
      kernels::gemm(og, kdim, ld, gy_g.get(), ld, 1, cols.get(), 1, ld,
                    gw.data<T>() + grp * og * kdim, false);
    }
  });
  return gw;
}

// The reference forward: im2col + one GEMM per group, adding the bias on the way out.
void im2col_conv(const Tensor& xc, const Tensor& wc, const Tensor& bias, const ConvShapes& s,
                 Tensor& out) {
  const int64_t og = s.out_per_group, kdim = s.kdim, plane = s.plane;
  const int64_t ld = s.batch * plane;
  dispatch_float(xc.dtype(), "conv2d", [&]<class T>() {
    std::unique_ptr<T[]> cols(new T[kdim * ld]), y_g(new T[og * ld]);
    const Tensor bc = bias.defined() ? materialize(bias) : Tensor();
    const T* b = bias.defined() ? bc.template data<T>() : nullptr;
    T* y = out.data<T>();
    for (int64_t grp = 0; grp < s.groups; ++grp) {
      batch_im2col(xc.data<T>(), s, grp, cols.get());
      kernels::gemm(og, ld, kdim, wc.data<T>() + grp * og * kdim, kdim, 1, cols.get(), ld, 1,
                    y_g.get(), false);
      // (O/groups, N * plane) -> (N, O, plane), adding the bias on the way.
#pragma omp parallel for schedule(static)
      for (int64_t n = 0; n < s.batch; ++n) {
        for (int64_t o = 0; o < og; ++o) {
          const int64_t channel = grp * og + o;
          const T shift = b != nullptr ? b[channel] : T(0);
          const T* from = y_g.get() + o * ld + n * plane;
          T* to = y + (n * s.out_c + channel) * plane;
          for (int64_t i = 0; i < plane; ++i) to[i] = from[i] + shift;
        }
      }
    }
  });
}

}  // namespace

// y[n, o] = sum_c W[o, c] * x[n, c] (cross-correlation, PyTorch's conv2d) + b[o].
// x (N, C, H, W), W (O, C/groups, KH, KW) -> y (N, O, OH, OW),
// OH = (H + pad_top + pad_bottom - dilation_h * (KH - 1) - 1) / stride_h + 1.
// With Epilogue::kRelu, y = max(conv, 0) and the backward first masks g by [y > 0].
// A bfloat16 x (mixed precision: float32 weights and bias) gives a bfloat16 y, computed in bf16
// with float32 accumulation; on a CPU without bf16 kernels it is computed in float32 and rounded.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              Epilogue epilogue) {
  check_conv(x, weight, p);
  const ConvShapes s = conv_shapes(x.shape(), weight.shape(), p);
  const auto& g = s.geo;
  if (bias.defined()) {
    check_conv_dtypes(x, bias, "bias");
    NEUTRINO_CHECK_SHAPE(bias.dim() == 1 && bias.size(0) == s.out_c,
                         "conv2d: bias {} does not fit {} output channels", bias.shape_string(),
                         s.out_c);
  }
  const bool relu = epilogue == Epilogue::kRelu;
  const bool training = any_requires_grad({&x, &weight, &bias});
  const Shape out_shape{s.batch, s.out_c, g.out_h, g.out_w};
  if (x.dtype() == DType::kBFloat16 && !bf16_supported()) {
    return conv2d(x.to(DType::kFloat32), weight, bias, p, epilogue).to(DType::kBFloat16);
  }
  Tensor out;
  if (x.dtype() == DType::kFloat32 || x.dtype() == DType::kBFloat16) {
    // oneDNN writes channels-last output, so the next pool and conv read it without a reorder.
    const Tensor xd = dense_nchw_or_nhwc(x), wc = materialize(weight);
    const Tensor bc = bias.defined() ? materialize(bias) : Tensor();
    out = empty_channels_last(out_shape, x.dtype());
    kernels::conv2d_forward(conv_problem(s, p, xd, out), xd.raw_data(), wc.data<float>(),
                            bias.defined() ? bc.data<float>() : nullptr, out.raw_data(), relu,
                            training);
  } else {
    out = Tensor::empty(out_shape, x.dtype());
    im2col_conv(materialize(x), materialize(weight), bias, s, out);
    if (relu) kernels::unary(kernels::Unary::kRelu, out.data<double>(), out.data<double>(), out.numel());
  }
  if (!training) return out;
  const Tensor y = relu ? out.detach() : Tensor();
  record(out, "conv2d", {x, weight, bias}, [x, weight, bias, p, y](const Tensor& grad) {
    const Tensor grad_y = grad.to(x.dtype());  // itself unless it came back in another dtype
    const Tensor gy = y.defined() ? relu_backward(grad_y, y) : grad_y;
    Tensor gb;
    Tensor gw = needs_grad(weight)
                    ? conv2d_weight_grad(gy, x, weight.shape(), p, needs_grad(bias) ? &gb : nullptr)
                    : Tensor();
    if (needs_grad(bias) && !gb.defined()) {
      gb = sum(widen_bf16(gy), {0, 2, 3});
    }
    return std::vector<Tensor>{
        needs_grad(x) ? conv2d_input_grad(gy, weight, x.shape(), p,
                                          x.dtype() != DType::kFloat64 && !x.is_contiguous() &&
                                              is_channels_last(x))
                      : Tensor(),
        gw, gb};
  });
  return out;
}

namespace {
kernels::ConvGeometry pool_geometry(const Tensor& x, const Pool2dParams& p, const char* op) {
  check_float(x, op);
  NEUTRINO_CHECK_SHAPE(x.dim() == 4, "{}: input must be 4-D (N, C, H, W), got {}", op,
                       x.shape_string());
  NEUTRINO_CHECK_VALUE(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1,
                       "{}: kernel and stride must be >= 1", op);
  NEUTRINO_CHECK_VALUE(p.pad_top >= 0 && p.pad_left >= 0 && p.pad_bottom >= 0 && p.pad_right >= 0 &&
                           2 * std::max(p.pad_top, p.pad_bottom) <= p.kernel_h &&
                           2 * std::max(p.pad_left, p.pad_right) <= p.kernel_w,
                       "{}: padding must be between 0 and half the kernel", op);
  const kernels::ConvGeometry g{
      x.size(0) * x.size(1), x.size(2), x.size(3), p.kernel_h, p.kernel_w,
      window_out(x.size(2), p.pad_top, p.pad_bottom, p.kernel_h, 1, p.stride_h),
      window_out(x.size(3), p.pad_left, p.pad_right, p.kernel_w, 1, p.stride_w),
      p.stride_h, p.stride_w, p.pad_top, p.pad_left, 1, 1, p.pad_bottom, p.pad_right};
  NEUTRINO_CHECK_SHAPE(g.out_h > 0 && g.out_w > 0, "{}: input {} is smaller than the {}x{} window",
                       op, x.shape_string(), p.kernel_h, p.kernel_w);
  return g;
}
}  // namespace

namespace {
// 2x2 max pool of a channels-last tensor (a conv output), staying channels-last both ways; with
// `relu`, relu(max_pool2d(x)) in the same pass both ways.
Tensor max_pool2x2_channels_last(const Tensor& x, const kernels::ConvGeometry& g, bool relu) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  Tensor out = empty_channels_last({n, c, g.out_h, g.out_w}, x.dtype());
  const char* name = relu ? "max_pool2d_relu" : "max_pool2d";
  dispatch_float_bf16(x.dtype(), name, [&]<class T>() {
    kernels::max_pool2x2_nhwc(x.data<T>(), n, h, w, c, out.data<T>(), relu);
  });
  if (!any_requires_grad({&x})) return out;
  record(out, name, {x}, [xd = x.detach(), y = out.detach(), relu, name](const Tensor& gy) {
    const Tensor gyc = to_channels_last(gy.to(y.dtype()));
    Tensor gx = empty_channels_last(xd.shape(), y.dtype());
    dispatch_float_bf16(y.dtype(), name, [&]<class T>() {
      kernels::max_pool2x2_nhwc_backward(xd.data<T>(), y.data<T>(), gyc.data<T>(), xd.size(0),
                                         xd.size(2), xd.size(3), xd.size(1), gx.data<T>(), relu);
    });
    return std::vector<Tensor>{gx};
  });
  return out;
}

bool channels_last_pool2x2(const Tensor& x, const kernels::ConvGeometry& g) {
  return kernels::is_pool2x2(g) && !x.is_contiguous() && is_channels_last(x);
}
}  // namespace

namespace detail {
// relu(max_pool2d(x)): one pass for a channels-last 2x2 pool, else the two ops.
Tensor max_pool2d_relu(const Tensor& x, const Pool2dParams& p) {
  const kernels::ConvGeometry g = pool_geometry(x, p, "max_pool2d");
  if (channels_last_pool2x2(x, g)) return max_pool2x2_channels_last(x, g, true);
  return relu_same_layout(max_pool2d(x, p));
}
}  // namespace detail

// Max over each window; the gradient goes to the (first) maximum of each window.
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  const kernels::ConvGeometry g = pool_geometry(x, p, "max_pool2d");
  if (channels_last_pool2x2(x, g)) return max_pool2x2_channels_last(x, g, false);
  // bfloat16 has a kernel for the channels-last 2x2 pool of a bf16 network only.
  if (x.dtype() == DType::kBFloat16) return max_pool2d(x.to(DType::kFloat32), p).to(x.dtype());
  Tensor xc = materialize(x);
  Tensor out = Tensor::empty({x.size(0), x.size(1), g.out_h, g.out_w}, x.dtype());
  if (kernels::is_pool2x2(g)) {
    dispatch_float(x.dtype(), "max_pool2d", [&]<class T>() {
      kernels::max_pool2x2(xc.data<T>(), g, out.data<T>());
    });
    if (!any_requires_grad({&x})) return out;
    record(out, "max_pool2d", {x}, [g, xc, y = out.detach()](const Tensor& gy) {
      Tensor gyc = materialize(gy);
      Tensor gx = Tensor::empty(xc.shape(), gy.dtype());
      dispatch_float(gy.dtype(), "max_pool2d", [&]<class T>() {
        kernels::max_pool2x2_backward(xc.data<T>(), y.data<T>(), gyc.data<T>(), g, gx.data<T>());
      });
      return std::vector<Tensor>{gx};
    });
    return out;
  }
  Tensor indices = Tensor::empty(out.shape(), DType::kInt64);
  dispatch_float(x.dtype(), "max_pool2d", [&]<class T>() {
    kernels::max_pool2d(xc.data<T>(), g, out.data<T>(), indices.data<int64_t>());
  });
  record(out, "max_pool2d", {x}, [g, indices, shape = x.shape()](const Tensor& gy) {
    Tensor gyc = materialize(gy);
    Tensor gx = Tensor::zeros(shape, gy.dtype());
    dispatch_float(gy.dtype(), "max_pool2d", [&]<class T>() {
      kernels::max_pool2d_backward(gyc.data<T>(), indices.data<int64_t>(), g, gx.data<T>());
    });
    return std::vector<Tensor>{gx};
  });
  return out;
}

// Mean over each window; each input gets its share of the window's gradient.
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  const kernels::ConvGeometry g = pool_geometry(x, p, "avg_pool2d");
  if (x.dtype() == DType::kBFloat16) return avg_pool2d(x.to(DType::kFloat32), p).to(x.dtype());
  Tensor xc = materialize(x);
  Tensor out = Tensor::empty({x.size(0), x.size(1), g.out_h, g.out_w}, x.dtype());
  const bool include_pad = p.count_include_pad;
  dispatch_float(x.dtype(), "avg_pool2d", [&]<class T>() {
    kernels::avg_pool2d(xc.data<T>(), g, include_pad, out.data<T>());
  });
  record(out, "avg_pool2d", {x}, [g, include_pad, shape = x.shape()](const Tensor& gy) {
    Tensor gyc = materialize(gy);
    Tensor gx = Tensor::zeros(shape, gy.dtype());
    dispatch_float(gy.dtype(), "avg_pool2d", [&]<class T>() {
      kernels::avg_pool2d_backward(gyc.data<T>(), g, include_pad, gx.data<T>());
    });
    return std::vector<Tensor>{gx};
  });
  return out;
}

// y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over every dim but the channel
// dim 1. Composed of differentiable ops, so its backward comes from theirs.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
  check_float(x, "batch_norm");
  NEUTRINO_CHECK_SHAPE(x.dim() >= 2, "batch_norm: input must have a channel dim 1, got {}",
                       x.shape_string());
  const int64_t channels = x.size(1);
  Shape stat_shape(x.dim(), 1);
  stat_shape[1] = channels;
  auto check_param = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return;
    check_same_float(x, t, "batch_norm");
    NEUTRINO_CHECK_SHAPE(t.dim() == 1 && t.size(0) == channels,
                         "batch_norm: {} {} does not fit input {} with {} channels", what,
                         t.shape_string(), x.shape_string(), channels);
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  check_param(running_mean, "running_mean");
  check_param(running_var, "running_var");
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);

  Tensor centered, var;
  if (training) {
    const int64_t count = x.numel() / channels;
    NEUTRINO_CHECK_SHAPE(count > 1, "batch_norm: training needs more than one value per channel, got input {}",
                         x.shape_string());
    const Tensor batch_mean = mean(x, dims, true);
    centered = sub(x, batch_mean);
    var = mean(mul(centered, centered), dims, true);
    if (running_mean.defined() && running_var.defined()) {
      NoGradGuard no_grad;
      const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
      running_mean.copy_(add(mul(running_mean, 1 - momentum), mul(reshape(batch_mean, {channels}), momentum)));
      running_var.copy_(add(mul(running_var, 1 - momentum), mul(reshape(var.detach(), {channels}), momentum * unbias)));
    }
  } else {
    NEUTRINO_CHECK_VALUE(running_mean.defined() && running_var.defined(),
                         "batch_norm: evaluation needs running_mean and running_var");
    centered = sub(x, reshape(running_mean, stat_shape));
    var = reshape(running_var, stat_shape);
  }
  Tensor y = div(centered, sqrt(add(var, eps)));
  if (weight.defined()) y = mul(y, reshape(weight, stat_shape));
  if (bias.defined()) y = add(y, reshape(bias, stat_shape));
  return y;
}

// y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing normalized_shape dims.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  check_float(x, "layer_norm");
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  NEUTRINO_CHECK_SHAPE(k >= 1 && x.dim() >= k &&
                           Shape(x.shape().end() - k, x.shape().end()) == normalized_shape,
                       "layer_norm: input {} does not end with normalized shape {}",
                       x.shape_string(), shape_str(normalized_shape));
  for (const Tensor* t : {&weight, &bias}) {
    if (!t->defined()) continue;
    check_same_float(x, *t, "layer_norm");
    NEUTRINO_CHECK_SHAPE(t->shape() == normalized_shape,
                         "layer_norm: weight/bias {} should have shape {}", t->shape_string(),
                         shape_str(normalized_shape));
  }
  std::vector<int64_t> dims;
  for (int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  const Tensor centered = sub(x, mean(x, dims, true));
  const Tensor var = mean(mul(centered, centered), dims, true);
  Tensor y = div(centered, sqrt(add(var, eps)));
  if (weight.defined()) y = mul(y, weight);
  if (bias.defined()) y = add(y, bias);
  return y;
}

// Inverted dropout: in training, zeroes each element with probability p and scales the rest by
// 1 / (1 - p), so evaluation is the identity.
Tensor dropout(const Tensor& x, double p, bool training) {
  NEUTRINO_CHECK_VALUE(p >= 0 && p < 1, "dropout: rate must be in [0, 1), got {}", p);
  if (!training || p == 0) return x;
  check_float(x, "dropout");
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  Generator& gen = global_generator();
  const double scale = 1.0 / (1.0 - p);
  dispatch_float(x.dtype(), "dropout", [&]<class T>() {
    T* m = mask.data<T>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) m[i] = gen.uniform() >= p ? T(scale) : T(0);
  });
  return mul(x, mask);
}

}  // namespace neutrino
