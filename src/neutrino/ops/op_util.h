// Helpers shared by the op implementations (not part of the public API).
#pragma once

#include <string>
#include <vector>

#include "neutrino/autograd/autograd.h"
#include "neutrino/ops/ops.h"

namespace neutrino::detail {

// Index of `dim` (negative counts from the end) in a tensor of `rank` dims, or a ShapeError
// naming the op.
int64_t normalize_dim(int64_t dim, int64_t rank, const char* op);
// NumPy broadcasting of two shapes; the error names the op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Strides that read `t` as if it had `out_shape` (0 on broadcast dims).
Shape broadcast_strides(const Tensor& t, const Shape& out_shape);
// A contiguous version of `t` with no graph recorded (for handing data to kernels).
Tensor materialize(const Tensor& t);
// Both tensors floating and of one dtype, or a ValueError naming the op.
void check_same_float(const Tensor& a, const Tensor& b, const char* op);
void check_float(const Tensor& t, const char* op);
// Elementwise kernel on a contiguous copy of x, no graph.
Tensor apply_unary(const Tensor& x, int op, const char* name, double alpha = 0, double beta = 0);
// A unary op whose backward is g * dydx(x, y), y the op's output.
template <class Op, class Grad>
Tensor unary_op(const Tensor& x, Op op, const char* name, Grad dydx, double alpha = 0,
                double beta = 0) {
  Tensor out = apply_unary(x, static_cast<int>(op), name, alpha, beta);
  if (any_requires_grad({&x})) {
    const Tensor y = out.detach();
    record(out, name, {x}, [x, y, dydx](const Tensor& g) {
      return std::vector<Tensor>{mul(g, dydx(x, y))};
    });
  }
  return out;
}
// Same dtype as `like`, float value.
inline Tensor scalar_like(double value, const Tensor& like) {
  return Tensor::scalar(value, like.dtype());
}
// Channels-last ("NHWC") 4-D tensors: shape (N, C, H, W) as usual, memory ordered (N, H, W, C).
// Convolution outputs use it so that conv -> pool -> conv needs no reorders; every other op sees
// an ordinary strided view. Dims of size 1 do not count against the layout.
bool is_channels_last(const Tensor& t);
Tensor empty_channels_last(const Shape& nchw, DType dtype);
// `t` itself when already channels-last, else a channels-last copy (no graph).
Tensor to_channels_last(const Tensor& t);
// g * [y > 0], in g's layout when g and y share a dense one (channels-last conv outputs). A
// kernel, not a graph: the backward of fused relus.
Tensor relu_backward(const Tensor& g, const Tensor& y);
// relu over a dense tensor in its own layout (a channels-last pool output stays channels-last for
// the next convolution), with relu_backward, which keeps it too, as its backward.
Tensor relu_same_layout(const Tensor& x);
// relu(max_pool2d(x, p)): one pass each way for the 2x2 pool of a channels-last tensor (the
// training order of a Conv2D(relu) + MaxPooling2D pair), else relu_same_layout(max_pool2d).
Tensor max_pool2d_relu(const Tensor& x, const Pool2dParams& p);
// An uninitialized tensor of `dense`'s shape and layout: contiguous when it is, else
// channels-last (`dense` is one of the two, as dense_nchw_or_nhwc returns).
Tensor empty_same_layout(const Tensor& dense);
// Dense channels-last or plain contiguous: the layout a kernel may read without copying.
// Returns `t` when it is either, else a contiguous copy.
Tensor dense_nchw_or_nhwc(const Tensor& t);
// float32 for a bfloat16 tensor (differentiable), any other tensor as it is: for ops whose
// kernels take bf16 only on their fast path.
inline Tensor widen_bf16(const Tensor& t) {
  return t.dtype() == DType::kBFloat16 ? cast(t, DType::kFloat32) : t;
}
// Float 0/1 tensor of a bool mask, in `like`'s dtype.
Tensor mask_to_float(const Tensor& mask, const Tensor& like);

}  // namespace neutrino::detail
