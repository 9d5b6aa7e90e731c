// Reductions (sum, mean, max, argmax), cumsum and the softmax family.
#include <algorithm>

#include "neutrino/backend/kernels.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

namespace {
// The reduced dims (sorted, unique; all of them when `dims` is empty) and the keepdim shape.
struct Reduction {
  std::vector<bool> reduced;
  Shape keep_shape;
  Shape out_shape;  // keep_shape without the reduced dims unless keepdim
};

Reduction plan_reduction(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                         const char* op) {
  const int64_t rank = x.dim();
  Reduction r{std::vector<bool>(rank, dims.empty()), x.shape(), {}};
  for (int64_t d : dims) {
    const int64_t nd = normalize_dim(d, rank, op);
    NEUTRINO_CHECK_SHAPE(!r.reduced[nd] || dims.empty(), "{}: dim {} given twice for shape {}", op,
                         d, x.shape_string());
    r.reduced[nd] = true;
  }
  for (int64_t d = 0; d < rank; ++d) {
    if (r.reduced[d]) r.keep_shape[d] = 1;
    if (!r.reduced[d] || keepdim) r.out_shape.push_back(r.keep_shape[d]);
  }
  return r;
}

Tensor as_shape(const Tensor& contiguous, const Shape& shape) {
  return contiguous.view_as(shape, contiguous_strides(shape), contiguous.offset());
}
}  // namespace

// d sum = g broadcast back over the reduced dims.
Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  check_float(x, "sum");
  const Reduction r = plan_reduction(x, dims, keepdim, "sum");
  Tensor xc = materialize(x);
  Tensor kept = Tensor::empty(r.keep_shape, x.dtype());
  dispatch_float(x.dtype(), "sum", [&]<class T>() {
    kernels::reduce_sum(xc.data<T>(), x.shape(), r.keep_shape, kept.data<T>());
  });
  Tensor out = as_shape(kept, r.out_shape);
  record(out, "sum", {x}, [x, keep_shape = r.keep_shape](const Tensor& g) {
    return std::vector<Tensor>{expand(reshape(g, keep_shape), x.shape())};
  });
  return out;
}

Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  check_float(x, "mean");
  const Reduction r = plan_reduction(x, dims, keepdim, "mean");
  const int64_t count = x.numel() / std::max<int64_t>(shape_numel(r.keep_shape), 1);
  NEUTRINO_CHECK_SHAPE(count > 0, "mean: reducing an empty tensor of shape {}", x.shape_string());
  return mul(sum(x, std::move(dims), keepdim), 1.0 / static_cast<double>(count));
}

// The gradient is shared equally between tied maxima (as torch.amax does).
Tensor max(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  check_float(x, "max");
  NEUTRINO_CHECK_SHAPE(x.numel() > 0, "max: reducing an empty tensor of shape {}", x.shape_string());
  const Reduction r = plan_reduction(x, dims, keepdim, "max");
  Tensor xc = materialize(x);
  Tensor kept = Tensor::empty(r.keep_shape, x.dtype());
  dispatch_float(x.dtype(), "max", [&]<class T>() {
    kernels::reduce_max(xc.data<T>(), x.shape(), r.keep_shape, kept.data<T>());
  });
  Tensor out = as_shape(kept, r.out_shape);
  if (any_requires_grad({&x})) {
    record(out, "max", {x}, [x, kept, dims, keep_shape = r.keep_shape](const Tensor& g) {
      const Tensor hit = mask_to_float(equal(x, kept), x);
      const Tensor count = sum(hit, dims, true);
      return std::vector<Tensor>{mul(div(reshape(g, keep_shape), count), hit)};
    });
  }
  return out;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_float(x, "argmax");
  const int64_t d = normalize_dim(dim, x.dim(), "argmax");
  NEUTRINO_CHECK_SHAPE(x.size(d) > 0, "argmax: dim {} of shape {} is empty", dim, x.shape_string());
  Shape keep = x.shape();
  keep[d] = 1;
  Tensor xc = materialize(x);
  Tensor out = Tensor::empty(keep, DType::kInt64);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  dispatch_float(x.dtype(), "argmax", [&]<class T>() {
    kernels::argmax(xc.data<T>(), outer, x.size(d), inner, out.data<int64_t>());
  });
  if (keepdim) return out;
  keep.erase(keep.begin() + d);
  return as_shape(out, keep);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  NEUTRINO_CHECK_SHAPE(lead >= 0, "sum_to: cannot reduce shape {} to {}", x.shape_string(),
                       shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && x.size(d) != 1)) {
      dims.push_back(d);
    } else {
      NEUTRINO_CHECK_SHAPE(shape[d - lead] == x.size(d), "sum_to: cannot reduce shape {} to {}",
                           x.shape_string(), shape_str(shape));
    }
  }
  if (dims.empty()) return reshape(x, shape);
  return reshape(sum(x, dims, true), shape);
}

namespace {
Tensor softmax_forward(const Tensor& x, int64_t dim, bool log, const char* name) {
  check_float(x, name);
  const int64_t d = normalize_dim(dim, x.dim(), name);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  const int64_t n = x.dim() == 0 ? 1 : x.size(d);
  Tensor xc = materialize(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), name, [&]<class T>() {
    kernels::softmax(xc.data<T>(), out.data<T>(), outer, n, inner, log);
  });
  return out;
}
}  // namespace

// d softmax: y * (g - sum(g * y, dim))
Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor out = softmax_forward(x, dim, false, "softmax");
  if (any_requires_grad({&x})) {
    const Tensor y = out.detach();
    record(out, "softmax", {x}, [y, dim](const Tensor& g) {
      return std::vector<Tensor>{mul(y, sub(g, sum(mul(g, y), {dim}, true)))};
    });
  }
  return out;
}

// d log_softmax: g - softmax(x) * sum(g, dim)
Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor out = softmax_forward(x, dim, true, "log_softmax");
  if (any_requires_grad({&x})) {
    const Tensor y = out.detach();
    record(out, "log_softmax", {x}, [y, dim](const Tensor& g) {
      return std::vector<Tensor>{sub(g, mul(exp(y), sum(g, {dim}, true)))};
    });
  }
  return out;
}

// ---- cumsum -----------------------------------------------------------------------------------

namespace {
// Prefix sums of x along dim d, from the back when `reverse`. The backward of a forward scan is the
// reverse scan of g (y_i = sum_{j <= i} x_j gives dL/dx_j = sum_{i >= j} g_i), and the other way.
Tensor scan(const Tensor& x, int64_t d, bool reverse) {
  const Tensor xc = materialize(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  const int64_t n = x.dim() == 0 ? 1 : x.size(d);
  dispatch_float(x.dtype(), "cumsum", [&]<class T>() {
    kernels::cumsum(xc.data<T>(), out.data<T>(), outer, n, inner, reverse);
  });
  record(out, "cumsum", {x},
         [d, reverse](const Tensor& g) { return std::vector<Tensor>{scan(g, d, !reverse)}; });
  return out;
}
}  // namespace

// x of any shape to the same shape.
Tensor cumsum(const Tensor& x, int64_t dim) {
  check_float(x, "cumsum");
  return scan(x, normalize_dim(dim, x.dim(), "cumsum"), false);
}

}  // namespace neutrino
