#include "neutrino/backend/conv_geometry.h"

#include <algorithm>

namespace neutrino {

int64_t window_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                           int64_t pad_before, int64_t pad_after) {
  const int64_t span = dilation * (kernel - 1) + 1;
  const int64_t padded = in + pad_before + pad_after;
  if (padded < span || stride < 1) return 0;
  return (padded - span) / stride + 1;
}

std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t kernel, int64_t stride,
                                         int64_t dilation) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0);
  return {total / 2, total - total / 2};
}

namespace {
// The window's placement (strides, padding) and the output size it gives: the same for a
// convolution and a pool (a pool's dilation is 1).
template <class Params>
void place_window(ConvGeometry& g, const Params& p, int64_t dilation_h, int64_t dilation_w) {
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.dilation_h = dilation_h;
  g.dilation_w = dilation_w;
  g.pad_top = p.pad_top;
  g.pad_left = p.pad_left;
  g.pad_bottom = p.pad_bottom;
  g.pad_right = p.pad_right;
  g.out_h = window_output_size(g.height, g.kernel_h, g.stride_h, g.dilation_h, g.pad_top,
                               g.pad_bottom);
  g.out_w = window_output_size(g.width, g.kernel_w, g.stride_w, g.dilation_w, g.pad_left,
                               g.pad_right);
}
}  // namespace

ConvGeometry conv_geometry(const Shape& x, const Shape& w, const Conv2dParams& p) {
  ConvGeometry g;
  g.batch = x[0];
  g.channels = x[1];
  g.height = x[2];
  g.width = x[3];
  g.out_channels = w[0];
  g.groups = p.groups;
  g.kernel_h = w[2];
  g.kernel_w = w[3];
  place_window(g, p, p.dilation_h, p.dilation_w);
  return g;
}

ConvGeometry pool_geometry(const Shape& x, const Pool2dParams& p) {
  ConvGeometry g;
  g.batch = x[0];
  g.channels = g.out_channels = x[1];
  g.height = x[2];
  g.width = x[3];
  g.kernel_h = p.kernel_h;
  g.kernel_w = p.kernel_w;
  place_window(g, p, 1, 1);
  return g;
}

}  // namespace neutrino
