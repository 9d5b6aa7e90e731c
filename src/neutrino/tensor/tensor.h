// Tensor: an N-dimensional view (shape, strides, offset) over shared Storage, plus the autograd
// fields. Tensor is a cheap handle (one shared_ptr); copies share data, like torch.Tensor.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "neutrino/core/dtype.h"
#include "neutrino/tensor/storage.h"

namespace neutrino {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "(2, 3)"
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

class Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;        // in elements
  int64_t offset = 0;   // in elements
  DType dtype = DType::kFloat32;
  // Autograd: a leaf with requires_grad collects .grad; a non-leaf has grad_fn.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: holds nothing
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Creation. Shapes are given outermost first, like NumPy.
  // Uninitialized, like torch.empty: for results that a kernel writes in full.
  static Tensor empty(const Shape& shape, DType dtype = DType::kFloat32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::kFloat32);
  static Tensor ones(const Shape& shape, DType dtype = DType::kFloat32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::kFloat32);
  static Tensor scalar(double value, DType dtype = DType::kFloat32);
  static Tensor arange(int64_t n, DType dtype = DType::kFloat32);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape);
  // Nested literals: Tensor::of({{0, 0}, {0, 1}}) is a (2, 2) float32 tensor.
  static Tensor of(std::initializer_list<double> values, DType dtype = DType::kFloat32);
  static Tensor of(std::initializer_list<std::initializer_list<double>> rows,
                   DType dtype = DType::kFloat32);
  static Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::kFloat32);
  static Tensor normal(const Shape& shape, double mean = 0, double stddev = 1,
                       DType dtype = DType::kFloat32);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  int64_t size(int64_t dim) const;  // negative dims count from the end
  const Shape& strides() const { return impl_->strides; }
  int64_t offset() const { return impl_->offset; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t numel() const { return shape_numel(impl_->shape); }
  DType dtype() const { return impl_->dtype; }
  bool is_contiguous() const;
  std::string shape_string() const { return shape_str(impl_->shape); }

  // Raw element access; T must match dtype(). data() points at element 0 of this view.
  template <class T>
  T* data() const;
  void* raw_data() const;
  // The single value of a one-element tensor, converted to double.
  double item() const;
  // Element at a multi-index, converted to double (slow; for tests and printing).
  double at(const std::vector<int64_t>& index) const;
  template <class T>
  std::vector<T> to_vector() const;  // converts from any dtype, in C order

  // The differentiable copies and conversions are ops (ops/ops.h: contiguous, clone, cast);
  // below the ops, densify() gives the same values without a graph.
  Tensor detach() const;                 // same data, no graph
  Tensor view_as(const Shape& shape, const Shape& strides, int64_t offset) const;  // no graph

  // Autograd.
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& set_requires_grad(bool value = true);
  Tensor grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
  void set_grad(const Tensor& grad) { impl_->grad = grad.impl_; }
  void zero_grad() { impl_->grad.reset(); }
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  // Reverse-mode autodiff from a tensor is backward(t) in autograd/autograd.h.

  // Fills in place (no graph): for initializers and optimizers.
  void fill_(double value) const;
  void copy_(const Tensor& source) const;  // same shape; converts dtype

  std::string to_string() const;
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// A contiguous tensor of `dtype` with t's values (t itself when it already is one), without a
// graph: the conversion the layers below the ops (io, autograd) use. The ops' cast() and
// contiguous() are the differentiable ones.
Tensor densify(const Tensor& t, DType dtype);
inline Tensor densify(const Tensor& t) { return densify(t, t.dtype()); }

template <class T>
T* Tensor::data() const {
  NEUTRINO_CHECK_VALUE(impl_ != nullptr, "data: the tensor is undefined");
  NEUTRINO_CHECK_VALUE(dtype_of<T>() == impl_->dtype, "data: tensor holds {}, asked for {}",
                       dtype_name(impl_->dtype), dtype_name(dtype_of<T>()));
  return static_cast<T*>(impl_->storage->data()) + impl_->offset;
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

}  // namespace neutrino
