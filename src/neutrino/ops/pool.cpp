// Pooling: max_pool2d (with its relu-fused form for a Conv2D(relu) + MaxPooling2D pair in
// training) and avg_pool2d, over the (H, W) planes of an (N, C, H, W) tensor. The shapes come
// from pool_geometry (backend/conv_geometry.h), the arithmetic from the pool kernels: the general
// window (any kernel, stride and padding, with an index per output for max's backward) and the
// 2x2/stride-2 max pool in NCHW and channels-last memory, which keeps no index.
#include <algorithm>

#include "neutrino/backend/kernels.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

namespace {
// The checks of both pools, and their geometry (over N * C planes).
ConvGeometry check_pool(const Tensor& x, const Pool2dParams& p, const char* op) {
  check_float(x, op);
  NEUTRINO_CHECK_SHAPE(x.dim() == 4, "{}: input must be 4-D (N, C, H, W), got {}", op,
                       x.shape_string());
  NEUTRINO_CHECK_VALUE(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1,
                       "{}: kernel and stride must be >= 1", op);
  NEUTRINO_CHECK_VALUE(p.pad_top >= 0 && p.pad_left >= 0 && p.pad_bottom >= 0 && p.pad_right >= 0 &&
                           2 * std::max(p.pad_top, p.pad_bottom) <= p.kernel_h &&
                           2 * std::max(p.pad_left, p.pad_right) <= p.kernel_w,
                       "{}: padding must be between 0 and half the kernel", op);
  const ConvGeometry g = pool_geometry(x.shape(), p);
  NEUTRINO_CHECK_SHAPE(g.out_h > 0 && g.out_w > 0, "{}: input {} is smaller than the {}x{} window",
                       op, x.shape_string(), p.kernel_h, p.kernel_w);
  return g;
}
// 2x2 max pool of a channels-last tensor (a conv output), staying channels-last both ways; with
// `relu`, relu(max_pool2d(x)) in the same pass both ways.
Tensor max_pool2x2_channels_last(const Tensor& x, const ConvGeometry& g, bool relu) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  Tensor out = empty_channels_last({n, c, g.out_h, g.out_w}, x.dtype());
  const char* name = relu ? "max_pool2d_relu" : "max_pool2d";
  dispatch_float_bf16(x.dtype(), name, [&]<class T>() {
    kernels::max_pool2x2_nhwc(x.data<T>(), n, h, w, c, out.data<T>(), relu);
  });
  if (!any_requires_grad({&x})) return out;
  record(out, name, {x}, [xd = x.detach(), y = out.detach(), relu, name](const Tensor& gy) {
    const Tensor gyc = to_channels_last(cast(gy, y.dtype()));
    Tensor gx = empty_channels_last(xd.shape(), y.dtype());
    dispatch_float_bf16(y.dtype(), name, [&]<class T>() {
      kernels::max_pool2x2_nhwc_backward(xd.data<T>(), y.data<T>(), gyc.data<T>(), xd.size(0),
                                         xd.size(2), xd.size(3), xd.size(1), gx.data<T>(), relu);
    });
    return std::vector<Tensor>{gx};
  });
  return out;
}

bool channels_last_pool2x2(const Tensor& x, const ConvGeometry& g) {
  return kernels::is_pool2x2(g) && !x.is_contiguous() && is_channels_last(x);
}
}  // namespace

namespace detail {
// relu(max_pool2d(x)): one pass for a channels-last 2x2 pool, else the two ops.
Tensor max_pool2d_relu(const Tensor& x, const Pool2dParams& p) {
  const ConvGeometry g = check_pool(x, p, "max_pool2d");
  if (channels_last_pool2x2(x, g)) return max_pool2x2_channels_last(x, g, true);
  return relu_same_layout(max_pool2d(x, p));
}
}  // namespace detail

// Max over each window; the gradient goes to the (first) maximum of each window.
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p) {
  const ConvGeometry g = check_pool(x, p, "max_pool2d");
  if (channels_last_pool2x2(x, g)) return max_pool2x2_channels_last(x, g, false);
  // bfloat16 has a kernel for the channels-last 2x2 pool of a bf16 network only.
  if (x.dtype() == DType::kBFloat16) return cast(max_pool2d(cast(x, DType::kFloat32), p), x.dtype());
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
  const ConvGeometry g = check_pool(x, p, "avg_pool2d");
  if (x.dtype() == DType::kBFloat16) return cast(avg_pool2d(cast(x, DType::kFloat32), p), x.dtype());
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

}  // namespace neutrino
