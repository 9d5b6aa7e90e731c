#include "neutrino/tensor/tensor.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <sstream>

#include "neutrino/core/random.h"

namespace neutrino {

std::string shape_str(const Shape& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t extent : shape) {
    NEUTRINO_CHECK_SHAPE(extent >= 0, "negative dimension in shape {}", shape_str(shape));
    NEUTRINO_CHECK_SHAPE(extent == 0 || n <= std::numeric_limits<int64_t>::max() / extent,
                         "shape {} has too many elements", shape_str(shape));
    n *= extent;
  }
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

namespace {
Tensor allocate(const Shape& shape, DType dtype, bool zero_fill) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(
      static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), zero_fill);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype) { return allocate(shape, dtype, false); }

Tensor Tensor::zeros(const Shape& shape, DType dtype) { return allocate(shape, dtype, true); }

Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, dtype);
  dispatch_all(dtype, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(i);
  });
  return t;
}

namespace {
template <class T>
Tensor from_values(const std::vector<T>& values, const Shape& shape) {
  NEUTRINO_CHECK_SHAPE(static_cast<int64_t>(values.size()) == shape_numel(shape),
                       "from_vector: {} values cannot fill shape {}", values.size(),
                       shape_str(shape));
  Tensor t = Tensor::empty(shape, dtype_of<T>());
  if (!values.empty()) std::memcpy(t.data<T>(), values.data(), values.size() * sizeof(T));
  return t;
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  return from_values(values, shape);
}
Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape) {
  return from_values(values, shape);
}
Tensor Tensor::from_vector(const std::vector<int64_t>& values, const Shape& shape) {
  return from_values(values, shape);
}

Tensor Tensor::of(std::initializer_list<double> values, DType dtype) {
  return densify(from_vector(std::vector<double>(values), {static_cast<int64_t>(values.size())}), dtype);
}

Tensor Tensor::of(std::initializer_list<std::initializer_list<double>> rows, DType dtype) {
  std::vector<double> flat;
  const int64_t cols = rows.size() == 0 ? 0 : static_cast<int64_t>(rows.begin()->size());
  for (const auto& row : rows) {
    NEUTRINO_CHECK_SHAPE(static_cast<int64_t>(row.size()) == cols,
                         "Tensor::of: ragged rows ({} and {} values)", cols, row.size());
    flat.insert(flat.end(), row.begin(), row.end());
  }
  return densify(from_vector(flat, {static_cast<int64_t>(rows.size()), cols}), dtype);
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, DType dtype) {
  Tensor t = empty(shape, dtype);
  Generator& gen = global_generator();
  dispatch_float(dtype, "uniform", [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) {
      p[i] = static_cast<T>(low + (high - low) * gen.uniform());
    }
  });
  return t;
}

Tensor Tensor::normal(const Shape& shape, double mean, double stddev, DType dtype) {
  Tensor t = empty(shape, dtype);
  Generator& gen = global_generator();
  dispatch_float(dtype, "normal", [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(mean + stddev * gen.normal());
  });
  return t;
}

int64_t Tensor::size(int64_t dim) const {
  const int64_t rank = this->dim();
  NEUTRINO_CHECK_SHAPE(dim >= -rank && dim < rank, "size: dim {} out of range for shape {}", dim,
                       shape_string());
  return impl_->shape[dim < 0 ? dim + rank : dim];
}

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // nothing to lay out
  int64_t expected = 1;
  for (size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(impl_->dtype);
}

double Tensor::at(const std::vector<int64_t>& index) const {
  NEUTRINO_CHECK_SHAPE(static_cast<int64_t>(index.size()) == dim(),
                       "at: {} indices for shape {}", index.size(), shape_string());
  int64_t off = 0;
  for (size_t d = 0; d < index.size(); ++d) {
    NEUTRINO_CHECK_SHAPE(index[d] >= 0 && index[d] < impl_->shape[d],
                         "at: index {} out of range for dim {} of shape {}", index[d], d,
                         shape_string());
    off += index[d] * impl_->strides[d];
  }
  return dispatch_all(dtype(), [&]<class T>() -> double {
    return static_cast<double>(static_cast<const T*>(impl_->storage->data())[impl_->offset + off]);
  });
}

double Tensor::item() const {
  NEUTRINO_CHECK_SHAPE(numel() == 1, "item: tensor of shape {} has {} elements, not 1",
                       shape_string(), numel());
  return at(std::vector<int64_t>(dim(), 0));
}

namespace {
// Every element of `src` in C order, converted to D. The tensor layer's one data-moving loop:
// it sits below the backend's kernels, and serves densify, copy_ and to_vector.
template <class D>
void read_elements(const Tensor& src, D* dst) {
  dispatch_all(src.dtype(), [&]<class S>() {
    const S* base = src.data<S>();
    const int64_t n = src.numel();
    if (src.is_contiguous()) {
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<D>(base[i]);
      return;
    }
    const Shape& shape = src.shape();
    const Shape& strides = src.strides();
    std::vector<int64_t> index(shape.size(), 0);
    int64_t offset = 0;
    for (int64_t i = 0; i < n; ++i) {
      dst[i] = static_cast<D>(base[offset]);
      for (size_t d = shape.size(); d-- > 0;) {  // odometer, last dim fastest
        offset += strides[d];
        if (++index[d] < shape[d]) break;
        offset -= strides[d] * shape[d];
        index[d] = 0;
      }
    }
  });
}
}  // namespace

Tensor densify(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype && t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), dtype);
  dispatch_all(dtype, [&]<class D>() { read_elements(t, out.data<D>()); });
  return out;
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> out(static_cast<size_t>(numel()));
  read_elements(*this, out.data());
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::view_as(const Shape& shape, const Shape& strides, int64_t offset) const {
  Tensor view = detach();
  view.impl_->shape = shape;
  view.impl_->strides = strides;
  view.impl_->offset = offset;
  return view;
}

Tensor& Tensor::set_requires_grad(bool value) {
  NEUTRINO_CHECK_VALUE(!value || is_floating(dtype()),
                       "set_requires_grad: only floating tensors can require grad, not {}",
                       dtype_name(dtype()));
  NEUTRINO_CHECK_VALUE(is_leaf(), "set_requires_grad: only leaf tensors; use detach() first");
  impl_->requires_grad = value;
  return *this;
}

void Tensor::fill_(double value) const {
  dispatch_all(dtype(), [&]<class T>() {
    T* base = static_cast<T*>(impl_->storage->data());
    const Shape& st = impl_->strides;
    const T v = static_cast<T>(value);
    // Walk the view, so filling a slice touches only its elements.
    std::vector<int64_t> index(impl_->shape.size(), 0);
    for (int64_t i = 0, n = numel(); i < n; ++i) {
      int64_t off = impl_->offset;
      for (size_t d = 0; d < index.size(); ++d) off += index[d] * st[d];
      base[off] = v;
      for (size_t d = index.size(); d-- > 0;) {
        if (++index[d] < impl_->shape[d]) break;
        index[d] = 0;
      }
    }
  });
}

void Tensor::copy_(const Tensor& source) const {
  NEUTRINO_CHECK_SHAPE(source.shape() == shape(), "copy_: source shape {} differs from {}",
                       source.shape_string(), shape_string());
  NEUTRINO_CHECK_VALUE(is_contiguous(), "copy_: destination must be contiguous");
  // densify copies a strided or other-dtype source first; a contiguous one of this dtype may
  // still overlap this tensor's own storage, hence memmove.
  const Tensor src = densify(source.detach(), dtype());
  if (src.impl_->storage == impl_->storage && src.offset() == offset()) return;
  std::memmove(raw_data(), src.raw_data(), static_cast<size_t>(numel()) * dtype_size(dtype()));
}

namespace {
void print_values(std::ostream& out, const Tensor& t, std::vector<int64_t>& index, size_t depth,
                  int precision) {
  const int64_t extent = t.shape()[depth];
  out << '[';
  const bool elide = extent > 12;
  for (int64_t i = 0; i < extent; ++i) {
    if (elide && i == 3) {
      out << "...";
      i = extent - 3;
      out << (depth + 1 == index.size() ? ", " : ",\n" + std::string(depth + 8, ' '));
    }
    index[depth] = i;
    if (depth + 1 == index.size()) {
      const double v = t.at(index);
      if (is_floating(t.dtype())) {
        out << fmt::format("{:.{}f}", v, precision);
      } else {
        out << static_cast<int64_t>(v);
      }
    } else {
      print_values(out, t, index, depth + 1, precision);
    }
    if (i + 1 < extent) out << (depth + 1 == index.size() ? ", " : ",\n" + std::string(depth + 8, ' '));
  }
  out << ']';
}
}  // namespace

std::string Tensor::to_string() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream out;
  out << "tensor(";
  if (dim() == 0) {
    out << (is_floating(dtype()) ? fmt::format("{:.4f}", item())
                                 : std::to_string(static_cast<int64_t>(item())));
  } else if (numel() == 0) {
    out << "[]";
  } else {
    std::vector<int64_t> index(dim(), 0);
    print_values(out, *this, index, 0, 4);
  }
  out << ", shape=" << shape_string();
  if (dtype() != DType::kFloat32) out << ", dtype=" << dtype_name(dtype());
  if (requires_grad()) out << ", requires_grad=true";
  out << ')';
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) {
  return out << tensor.to_string();
}

}  // namespace neutrino
