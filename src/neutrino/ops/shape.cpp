// Shape and indexing ops. reshape (of contiguous input), permute, transpose, slice and expand return
// views that share storage; the rest copy.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "neutrino/backend/kernels.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

namespace {
// Copies src (any strides) into dst (any strides) of the same shape.
void copy_into(const Tensor& src, const Tensor& dst) {
  if (dst.is_contiguous()) {
    dispatch_all(src.dtype(), [&]<class T>() {
      kernels::copy_strided(src.data<T>(), src.shape(), src.strides().data(), dst.data<T>());
    });
    return;
  }
  dispatch_all(src.dtype(), [&]<class T>() {
    kernels::copy_strided(src.data<T>(), src.shape(), src.strides().data(), dst.data<T>(),
                          dst.strides().data());
  });
}
}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  int64_t infer_at = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      NEUTRINO_CHECK_SHAPE(infer_at < 0, "reshape: more than one -1 in {}", shape_str(shape));
      infer_at = static_cast<int64_t>(i);
    } else {
      NEUTRINO_CHECK_SHAPE(shape[i] >= 0, "reshape: negative size in {}", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer_at >= 0) {
    NEUTRINO_CHECK_SHAPE(known > 0 && x.numel() % known == 0,
                         "reshape: cannot reshape {} into {}", x.shape_string(), shape_str(shape));
    shape[infer_at] = x.numel() / known;
  }
  NEUTRINO_CHECK_SHAPE(shape_numel(shape) == x.numel(),
                       "reshape: cannot reshape {} ({} elements) into {}", x.shape_string(),
                       x.numel(), shape_str(shape));
  if (shape == x.shape()) return x;
  const Tensor base = materialize(x);
  Tensor out = base.view_as(shape, contiguous_strides(shape), base.offset());
  record(out, "reshape", {x}, [x](const Tensor& g) {
    return std::vector<Tensor>{reshape(g, x.shape())};
  });
  return out;
}

Tensor flatten(const Tensor& x, int64_t start_dim) {
  const int64_t start = normalize_dim(start_dim, x.dim(), "flatten");
  Shape shape(x.shape().begin(), x.shape().begin() + start);
  shape.push_back(-1);
  if (x.numel() == 0) shape.back() = 0;
  return reshape(x, shape);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t rank = x.dim();
  NEUTRINO_CHECK_SHAPE(static_cast<int64_t>(dims.size()) == rank,
                       "permute: {} dims given for a tensor of shape {}", dims.size(),
                       x.shape_string());
  Shape shape(rank), strides(rank);
  std::vector<int64_t> inverse(rank, -1);
  for (int64_t i = 0; i < rank; ++i) {
    const int64_t d = normalize_dim(dims[i], rank, "permute");
    NEUTRINO_CHECK_SHAPE(inverse[d] < 0, "permute: dim {} repeated", d);
    inverse[d] = i;
    shape[i] = x.shape()[d];
    strides[i] = x.strides()[d];
  }
  Tensor out = x.view_as(shape, strides, x.offset());
  record(out, "permute", {x}, [inverse](const Tensor& g) {
    return std::vector<Tensor>{permute(g, inverse)};
  });
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  std::vector<int64_t> dims(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) dims[i] = i;
  std::swap(dims[normalize_dim(dim0, x.dim(), "transpose")],
            dims[normalize_dim(dim1, x.dim(), "transpose")]);
  return permute(x, dims);
}

namespace {
// The backward of slice: g placed into zeros of the input's shape.
Tensor slice_scatter(const Tensor& g, const Shape& shape, int64_t dim, int64_t start, int64_t end,
                     int64_t step) {
  Tensor out = Tensor::zeros(shape, g.dtype());
  copy_into(g, slice(out.detach(), dim, start, end, step));
  record(out, "slice_scatter", {g}, [dim, start, end, step](const Tensor& gg) {
    return std::vector<Tensor>{slice(gg, dim, start, end, step)};
  });
  return out;
}
}  // namespace

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  const int64_t d = normalize_dim(dim, x.dim(), "slice");
  NEUTRINO_CHECK_VALUE(step > 0, "slice: step must be positive, got {}", step);
  const int64_t extent = x.size(d);
  // Python rules: negative bounds count from the end, and bounds clip to the dim.
  if (start < 0) start += extent;
  if (end < 0) end += extent;
  start = std::clamp<int64_t>(start, 0, extent);
  end = std::clamp<int64_t>(end, start, extent);
  Shape shape = x.shape();
  Shape strides = x.strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Tensor out = x.view_as(shape, strides, x.offset() + start * x.strides()[d]);
  record(out, "slice", {x}, [shape = x.shape(), d, start, end, step](const Tensor& g) {
    return std::vector<Tensor>{slice_scatter(g, shape, d, start, end, step)};
  });
  return out;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  NEUTRINO_CHECK_SHAPE(shape.size() >= x.shape().size(), "expand: cannot expand {} to {}",
                       x.shape_string(), shape_str(shape));
  const size_t lead = shape.size() - x.shape().size();
  Shape strides(shape.size(), 0);
  for (size_t i = 0; i < x.shape().size(); ++i) {
    const int64_t have = x.shape()[i];
    NEUTRINO_CHECK_SHAPE(have == shape[lead + i] || have == 1, "expand: cannot expand {} to {}",
                         x.shape_string(), shape_str(shape));
    strides[lead + i] = have == 1 && shape[lead + i] != 1 ? 0 : x.strides()[i];
  }
  Tensor out = x.view_as(shape, strides, x.offset());
  record(out, "expand", {x}, [x](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, x.shape())};
  });
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  NEUTRINO_CHECK_VALUE(!xs.empty(), "concat: no tensors given");
  const Tensor& first = xs.front();
  const int64_t d = normalize_dim(dim, first.dim(), "concat");
  Shape shape = first.shape();
  shape[d] = 0;
  for (const Tensor& t : xs) {
    NEUTRINO_CHECK_VALUE(t.dtype() == first.dtype(), "concat: dtypes differ ({} and {})",
                         dtype_name(first.dtype()), dtype_name(t.dtype()));
    bool fits = t.dim() == first.dim();
    for (int64_t i = 0; fits && i < t.dim(); ++i) fits = i == d || t.size(i) == first.size(i);
    NEUTRINO_CHECK_SHAPE(fits, "concat: shape {} does not fit {} along dim {}", t.shape_string(),
                         first.shape_string(), d);
    shape[d] += t.size(d);
  }
  Tensor out = Tensor::empty(shape, first.dtype());
  std::vector<int64_t> bounds{0};
  for (const Tensor& t : xs) {
    bounds.push_back(bounds.back() + t.size(d));
    copy_into(t, slice(out.detach(), d, bounds[bounds.size() - 2], bounds.back()));
  }
  record(out, "concat", xs, [d, bounds](const Tensor& g) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i + 1 < bounds.size(); ++i) grads.push_back(slice(g, d, bounds[i], bounds[i + 1]));
    return grads;
  });
  return out;
}

namespace {
void check_index(const Tensor& index, int64_t limit, const char* op) {
  NEUTRINO_CHECK_VALUE(index.dtype() == DType::kInt64, "{}: index must be int64, got {}", op,
                       dtype_name(index.dtype()));
  const Tensor flat = materialize(index);
  const int64_t* p = flat.data<int64_t>();
  const int64_t bad = kernels::find_out_of_range(p, index.numel(), limit);
  NEUTRINO_CHECK_VALUE(bad == index.numel(), "{}: index {} is out of range [0, {})", op, p[bad],
                       limit);
}

// outer/inner sizes around `dim` for a contiguous tensor.
std::pair<int64_t, int64_t> outer_inner(const Shape& shape, int64_t dim) {
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= shape[i];
  for (size_t i = dim + 1; i < shape.size(); ++i) inner *= shape[i];
  return {outer, inner};
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const int64_t d = normalize_dim(dim, x.dim(), "index_select");
  NEUTRINO_CHECK_SHAPE(index.dim() <= 1, "index_select: index must be 1-D, got shape {}",
                       index.shape_string());
  check_index(index, x.size(d), "index_select");
  const Tensor xc = materialize(x);
  const Tensor idx = materialize(index);
  const int64_t count = index.numel();
  Shape shape = x.shape();
  shape[d] = count;
  Tensor out = Tensor::empty(shape, x.dtype());
  const auto [outer, inner] = outer_inner(x.shape(), d);
  kernels::index_select(xc.raw_data(), outer, x.size(d), inner, dtype_size(x.dtype()),
                        idx.data<int64_t>(), count, out.raw_data());
  record(out, "index_select", {x}, [shape = x.shape(), d, index](const Tensor& g) {
    return std::vector<Tensor>{index_add(shape, d, index, g)};
  });
  return out;
}

// Scatter-add: out[.., index[i], ..] += source[.., i, ..]. Repeated indices accumulate.
Tensor index_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& source) {
  check_float(source, "index_add");
  const int64_t d = normalize_dim(dim, static_cast<int64_t>(shape.size()), "index_add");
  check_index(index, shape[d], "index_add");
  const int64_t count = index.numel();
  Shape expected = shape;
  expected[d] = count;
  NEUTRINO_CHECK_SHAPE(source.shape() == expected, "index_add: source shape {} should be {}",
                       source.shape_string(), shape_str(expected));
  const Tensor sc = materialize(source);
  const Tensor idx = materialize(index);
  Tensor out = Tensor::zeros(shape, source.dtype());
  const auto extents = outer_inner(shape, d);
  const int64_t outer = extents.first, inner = extents.second;
  dispatch_float(source.dtype(), "index_add", [&]<class T>() {
    kernels::index_add(sc.data<T>(), outer, count, idx.data<int64_t>(), shape[d], inner,
                       out.data<T>());
  });
  record(out, "index_add", {source}, [d, index](const Tensor& g) {
    return std::vector<Tensor>{index_select(g, d, index)};
  });
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  NEUTRINO_CHECK_SHAPE(weight.dim() == 2, "embedding: weight must be 2-D (num, dim), got {}",
                       weight.shape_string());
  Shape shape = indices.shape();
  shape.push_back(weight.size(1));
  return reshape(index_select(weight, 0, reshape(indices, {indices.numel()})), shape);
}

// ---- pieces, stacking and triangles -------------------------------------------------------

// Pieces of x (.., n, ..) along dim: views (.., sizes[i], ..) at the running offsets. Each is a
// slice, whose backward places its gradient back at its offset; autograd sums the pieces.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const int64_t d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    NEUTRINO_CHECK_VALUE(s >= 0, "split: negative size {}", s);
    total += s;
  }
  NEUTRINO_CHECK_SHAPE(total == x.size(d), "split: sizes adding up to {} do not split dim {} of {}",
                       total, d, x.shape_string());
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(slice(x, d, start, start + s));
    start += s;
  }
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  const int64_t d = normalize_dim(dim, x.dim(), "split");
  NEUTRINO_CHECK_VALUE(split_size > 0, "split: split_size must be positive, got {}", split_size);
  std::vector<int64_t> sizes;
  for (int64_t left = x.size(d); left > 0; left -= split_size)
    sizes.push_back(std::min(left, split_size));
  if (sizes.empty()) sizes.push_back(0);  // an empty dim gives one empty piece, as in PyTorch
  return split(x, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  NEUTRINO_CHECK_VALUE(chunks > 0, "chunk: chunks must be positive, got {}", chunks);
  const int64_t d = normalize_dim(dim, x.dim(), "chunk");
  const int64_t size = x.size(d);
  return split(x, std::max<int64_t>((size + chunks - 1) / chunks, 1), d);
}

// k tensors of shape S -> one of S with k inserted at dim: each gets a unit dim there (a view) and
// they are concatenated, whose backward slices the gradient back apart.
Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  NEUTRINO_CHECK_VALUE(!xs.empty(), "stack: no tensors given");
  const Shape& shape = xs.front().shape();
  const int64_t d = normalize_dim(dim, xs.front().dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (const Tensor& t : xs) {
    NEUTRINO_CHECK_SHAPE(t.shape() == shape, "stack: shape {} differs from the first tensor's {}",
                         t.shape_string(), shape_str(shape));
    Shape unit = shape;
    unit.insert(unit.begin() + d, 1);
    parts.push_back(reshape(t, unit));
  }
  return concat(parts, d);
}

namespace {
// x (..., rows, cols) with the other triangle zeroed; the backward zeroes the same part of g.
Tensor triangle(const Tensor& x, int64_t k, bool lower) {
  const char* name = lower ? "tril" : "triu";
  NEUTRINO_CHECK_VALUE(x.defined(), "{}: got an undefined tensor", name);
  NEUTRINO_CHECK_SHAPE(x.dim() >= 2, "{}: expected a tensor of at least 2 dims, got {}", name,
                       x.shape_string());
  NEUTRINO_CHECK_VALUE(
      is_floating(x.dtype()) || x.dtype() == DType::kInt64 || x.dtype() == DType::kBool,
      "{}: expected a float, int64 or bool tensor, got {}", name, dtype_name(x.dtype()));
  const Tensor xc = materialize(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const int64_t rows = x.size(-2), cols = x.size(-1);
  const int64_t batch = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
  auto run = [&]<class T>() {
    kernels::triangle(xc.data<T>(), out.data<T>(), batch, rows, cols, k, lower);
  };
  if (x.dtype() == DType::kInt64) {
    run.template operator()<int64_t>();
  } else if (x.dtype() == DType::kBool) {
    run.template operator()<bool>();
  } else {
    dispatch_float(x.dtype(), name, run);
  }
  record(out, name, {x},
         [k, lower](const Tensor& g) { return std::vector<Tensor>{triangle(g, k, lower)}; });
  return out;
}
}  // namespace

Tensor tril(const Tensor& x, int64_t k) { return triangle(x, k, true); }
Tensor triu(const Tensor& x, int64_t k) { return triangle(x, k, false); }

// ---- creation -------------------------------------------------------------------------------

// ceil((end - start) / step) values; the float ones computed in double, as PyTorch does.
Tensor arange(double start, double end, double step, DType dtype) {
  NEUTRINO_CHECK_VALUE(std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
                       "arange: start {}, end {} and step {} must be finite", start, end, step);
  NEUTRINO_CHECK_VALUE(step != 0, "arange: step must not be 0");
  NEUTRINO_CHECK_VALUE(
      dtype == DType::kFloat32 || dtype == DType::kFloat64 || dtype == DType::kInt64,
      "arange: dtype must be float32, float64 or int64, got {}", dtype_name(dtype));
  if (dtype == DType::kInt64) {
    NEUTRINO_CHECK_VALUE(
        start == std::floor(start) && end == std::floor(end) && step == std::floor(step),
        "arange: an int64 range needs whole numbers, got start {}, end {}, step {}", start, end,
        step);
  }
  const double count = std::ceil((end - start) / step);
  NEUTRINO_CHECK_VALUE(count < 1e12, "arange: {} values from {} to {} by {} are too many", count,
                       start, end, step);
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor out = Tensor::empty({n}, dtype);
  dispatch_all(dtype, [&]<class T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> ||
                  std::is_same_v<T, int64_t>) {
      kernels::arange(out.data<T>(), n, start, step);
    }
  });
  return out;
}

}  // namespace neutrino
