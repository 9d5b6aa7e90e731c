// Convolution: conv2d (stride, padding, dilation, groups, a fused relu) and the fused first
// layer conv2d_relu_max_pool2d. The shapes come from conv_geometry (backend/conv_geometry.h),
// the arithmetic from three backend entries (kernels::conv2d_forward, conv2d_backward_data,
// conv2d_backward_weights), which pick oneDNN or the float64 reference.
#include "neutrino/backend/kernels.h"
#include "neutrino/core/precision.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

namespace {
// The buffers' dtypes and memory orders. A tensor that is both contiguous and channels-last (one
// channel, as a first layer's input) counts as channels-last: oneDNN has no fast training kernel
// for plain input with channels-last output.
kernels::ConvLayout layout_of(const Tensor& x_like, const Tensor& y_like) {
  return {x_like.dtype(), y_like.dtype(), is_channels_last(x_like), is_channels_last(y_like)};
}

// An output-shaped (y-shaped) or input-shaped buffer in the layout the backend writes.
Tensor empty_conv_buffer(const Shape& shape, DType dtype, bool channels_last) {
  return channels_last ? empty_channels_last(shape, dtype) : Tensor::empty(shape, dtype);
}

// A bfloat16 input (mixed precision) takes float32 weights: they are the master copy.
void check_conv_dtypes(const Tensor& x, const Tensor& w, const char* what) {
  if (x.dtype() != DType::kBFloat16) return check_same_float(x, w, "conv2d");
  NEUTRINO_CHECK_VALUE(w.defined() && w.dtype() == DType::kFloat32,
                       "conv2d: a bfloat16 input {} takes a float32 {}, got {}", x.shape_string(),
                       what, w.defined() ? dtype_name(w.dtype()) : "an undefined tensor");
}

ConvGeometry check_conv(const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Conv2dParams& p) {
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
  const ConvGeometry g = conv_geometry(x.shape(), w.shape(), p);
  NEUTRINO_CHECK_SHAPE(g.out_h > 0 && g.out_w > 0,
                       "conv2d: input {} is too small for kernel {} with this padding/dilation",
                       x.shape_string(), w.shape_string());
  if (bias.defined()) {
    check_conv_dtypes(x, bias, "bias");
    NEUTRINO_CHECK_SHAPE(bias.dim() == 1 && bias.size(0) == g.out_channels,
                         "conv2d: bias {} does not fit {} output channels", bias.shape_string(),
                         g.out_channels);
  }
  return g;
}

// grad_x of x's shape and layout (and dtype: a bf16 network's x and y are both bf16); gy is read
// in whichever of the two dense layouts it has.
Tensor conv2d_input_grad(const Tensor& gy, const Tensor& w, const Tensor& x,
                         const ConvGeometry& g) {
  const bool fast = kernels::conv2d_prefers_channels_last(gy.dtype());
  const Tensor gyd = fast ? dense_nchw_or_nhwc(gy) : materialize(gy), wd = materialize(w);
  const bool x_nhwc = fast && !x.is_contiguous() && is_channels_last(x);
  Tensor gx = empty_conv_buffer(x.shape(), gy.dtype(), x_nhwc);
  kernels::conv2d_backward_data(g, layout_of(gx, gyd), gyd.raw_data(), wd.raw_data(),
                                gx.raw_data());
  return gx;
}

// grad_W (float32 like the weights whatever the activations are, or float64), and grad_b into
// *gb when gb is given, summed over the batch.
Tensor conv2d_weight_grad(const Tensor& gy, const Tensor& x, const Shape& w_shape,
                          const ConvGeometry& g, Tensor* gb) {
  const bool fast = kernels::conv2d_prefers_channels_last(gy.dtype());
  const Tensor gyd = fast ? dense_nchw_or_nhwc(gy) : materialize(gy);
  const Tensor xd = fast ? dense_nchw_or_nhwc(x) : materialize(x);
  const DType wdtype = fast ? DType::kFloat32 : gy.dtype();
  Tensor gw = Tensor::empty(w_shape, wdtype);
  if (gb != nullptr) *gb = Tensor::empty({g.out_channels}, wdtype);
  kernels::conv2d_backward_weights(g, layout_of(xd, gyd), xd.raw_data(), gyd.raw_data(),
                                   gw.raw_data(), gb != nullptr ? gb->raw_data() : nullptr);
  return gw;
}
}  // namespace

// y[n, o] = sum_c W[o, c] * x[n, c] (cross-correlation, PyTorch's conv2d) + b[o].
// x (N, C, H, W), W (O, C/groups, KH, KW) -> y (N, O, OH, OW),
// OH = (H + pad_top + pad_bottom - dilation_h * (KH - 1) - 1) / stride_h + 1 (window_output_size).
// With Epilogue::kRelu, y = max(conv, 0) and the backward first masks g by [y > 0].
// A bfloat16 x (mixed precision: float32 weights and bias) gives a bfloat16 y, computed in bf16
// with float32 accumulation; on a CPU without bf16 kernels it is computed in float32 and rounded.
// float32 and bfloat16 outputs are channels-last, so the next pool and conv read them without a
// reorder. Backward: dx = conv2d_backward_data(g), dW = conv2d_backward_weights(x, g),
// db = sum of g over (N, OH, OW).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              Epilogue epilogue) {
  const ConvGeometry g = check_conv(x, weight, bias, p);
  if (x.dtype() == DType::kBFloat16 && !bf16_supported()) {
    return cast(conv2d(cast(x, DType::kFloat32), weight, bias, p, epilogue), DType::kBFloat16);
  }
  const bool relu = epilogue == Epilogue::kRelu;
  const bool training = any_requires_grad({&x, &weight, &bias});
  const bool fast = kernels::conv2d_prefers_channels_last(x.dtype());
  const Tensor xd = fast ? dense_nchw_or_nhwc(x) : materialize(x), wc = materialize(weight);
  const Tensor bc = bias.defined() ? materialize(bias) : Tensor();
  Tensor out = empty_conv_buffer({g.batch, g.out_channels, g.out_h, g.out_w}, x.dtype(), fast);
  kernels::conv2d_forward(g, layout_of(xd, out), xd.raw_data(), wc.raw_data(),
                          bias.defined() ? bc.raw_data() : nullptr, out.raw_data(), relu, training);
  if (!training) return out;
  const Tensor y = relu ? out.detach() : Tensor();
  record(out, "conv2d", {x, weight, bias}, [x, weight, bias, g, y](const Tensor& grad) {
    const Tensor grad_y = cast(grad, x.dtype());  // itself unless it came back in another dtype
    const Tensor gy = y.defined() ? relu_backward(grad_y, y) : grad_y;
    Tensor gb;
    Tensor gw = needs_grad(weight)
                    ? conv2d_weight_grad(gy, x, weight.shape(), g, needs_grad(bias) ? &gb : nullptr)
                    : Tensor();
    if (needs_grad(bias) && !gb.defined()) gb = sum(widen_bf16(gy), {0, 2, 3});
    return std::vector<Tensor>{needs_grad(x) ? conv2d_input_grad(gy, weight, x, g) : Tensor(), gw,
                               gb};
  });
  return out;
}

// y = maxpool(relu(conv(x) + b)). With a graph to record it runs as relu(maxpool(conv(x) + b)):
// the same values and gradients (relu is monotonic, and a window whose maximum is not positive
// passes no gradient either way), but the relu and its backward touch the pooled tensor, a
// quarter of the convolution's output, and the convolution's backward needs no relu mask.
// The fused kernel needs: float32, no gradient, a 3x3 kernel of
// stride 1, dilation 1, one group and padding 1 on every side, up to 4 input channels, a multiple
// of 16 output channels up to 64, and a 2x2 pool of stride 2 without padding over even H and W.
Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                              const Conv2dParams& conv, const Pool2dParams& pool) {
  const bool fusable =
      x.dtype() == DType::kFloat32 && weight.dtype() == DType::kFloat32 &&
      (!bias.defined() || bias.dtype() == DType::kFloat32) &&
      !any_requires_grad({&x, &weight, &bias}) && x.dim() == 4 && weight.dim() == 4 &&
      x.size(1) == weight.size(1) && weight.size(2) == 3 && weight.size(3) == 3 &&
      x.size(2) % 2 == 0 && x.size(3) % 2 == 0 && x.size(2) > 0 && x.size(3) > 0 &&
      conv.stride_h == 1 && conv.stride_w == 1 && conv.dilation_h == 1 && conv.dilation_w == 1 &&
      conv.groups == 1 && conv.pad_top == 1 && conv.pad_bottom == 1 && conv.pad_left == 1 &&
      conv.pad_right == 1 && pool.kernel_h == 2 && pool.kernel_w == 2 && pool.stride_h == 2 &&
      pool.stride_w == 2 && pool.pad_top == 0 && pool.pad_left == 0 && pool.pad_bottom == 0 &&
      pool.pad_right == 0 && compute_precision() == Precision::kFloat32 &&
      kernels::conv3x3_relu_max_pool2x2_supported(weight.size(1), weight.size(0)) &&
      (!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)));
  if (!fusable) {
    if (any_requires_grad({&x, &weight, &bias})) {
      return max_pool2d_relu(conv2d(x, weight, bias, conv), pool);
    }
    return max_pool2d(conv2d(x, weight, bias, conv, Epilogue::kRelu), pool);
  }
  const Tensor xc = materialize(x), wc = materialize(weight);
  const Tensor bc = bias.defined() ? materialize(bias) : Tensor();
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3), out_c = weight.size(0);
  Tensor out = empty_channels_last({n, out_c, h / 2, w / 2}, DType::kFloat32);
  kernels::conv3x3_relu_max_pool2x2(xc.data<float>(), n, x.size(1), h, w, wc.data<float>(),
                                    bc.defined() ? bc.data<float>() : nullptr, out_c,
                                    out.data<float>());
  return out;
}

}  // namespace neutrino
