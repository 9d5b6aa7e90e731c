// Memory layouts of 4-D tensors: channels-last (NHWC memory behind an (N, C, H, W) view), which
// convolution outputs use so that conv -> pool -> conv needs no reorders, and the helpers that
// keep a kernel's output in its input's layout.
#include "neutrino/ops/op_util.h"

namespace neutrino::detail {

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

}  // namespace neutrino::detail
