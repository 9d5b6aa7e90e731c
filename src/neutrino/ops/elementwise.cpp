// Elementwise ops: the helpers every op uses, copies and conversions, broadcasting binary ops,
// scalar and unary math (activations are in activation.cpp), comparisons and where.
#include <cmath>
#include <cstring>

#include "neutrino/backend/kernels.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using kernels::Binary;
using kernels::Unary;

namespace detail {

int64_t normalize_dim(int64_t dim, int64_t rank, const char* op) {
  NEUTRINO_CHECK_SHAPE(dim >= -rank && dim < std::max<int64_t>(rank, 1),
                       "{}: dim {} is out of range for a tensor with {} dims", op, dim, rank);
  return dim < 0 ? dim + rank : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    NEUTRINO_CHECK_SHAPE(da == db || da == 1 || db == 1,
                         "{}: shapes {} and {} cannot be broadcast together", op, shape_str(a),
                         shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Tensor& t, const Shape& out_shape) {
  const size_t lead = out_shape.size() - t.shape().size();
  Shape strides(out_shape.size(), 0);
  for (size_t i = 0; i < t.shape().size(); ++i) {
    strides[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  }
  return strides;
}

Tensor materialize(const Tensor& t) {
  if (t.is_contiguous()) return t.detach();
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  dispatch_all(t.dtype(), [&]<class T>() {
    kernels::copy_strided(t.data<T>(), t.shape(), t.strides().data(), out.data<T>());
  });
  return out;
}

void check_float(const Tensor& t, const char* op) {
  NEUTRINO_CHECK_VALUE(t.defined(), "{}: got an undefined tensor", op);
  NEUTRINO_CHECK_VALUE(is_floating(t.dtype()), "{}: expected a floating tensor, got {} of shape {}",
                       op, dtype_name(t.dtype()), t.shape_string());
}

void check_same_float(const Tensor& a, const Tensor& b, const char* op) {
  check_float(a, op);
  check_float(b, op);
  NEUTRINO_CHECK_VALUE(a.dtype() == b.dtype(), "{}: dtypes differ ({} of shape {} and {} of shape {})",
                       op, dtype_name(a.dtype()), a.shape_string(), dtype_name(b.dtype()),
                       b.shape_string());
}

Tensor apply_unary(const Tensor& x, int op, const char* name, double alpha, double beta) {
  check_float(x, name);
  Tensor xc = materialize(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), name, [&]<class T>() {
    kernels::unary(static_cast<Unary>(op), xc.data<T>(), out.data<T>(), x.numel(), alpha, beta);
  });
  return out;
}

Tensor mask_to_float(const Tensor& mask, const Tensor& like) {
  NEUTRINO_CHECK_VALUE(mask.dtype() == DType::kBool, "mask must be bool, got {}",
                       dtype_name(mask.dtype()));
  Tensor m = materialize(mask);
  Tensor out = Tensor::empty(mask.shape(), like.dtype());
  dispatch_float(like.dtype(), "mask", [&]<class T>() {
    kernels::cast(m.raw_data(), DType::kBool, out.raw_data(), dtype_of<T>(), mask.numel());
  });
  return out;
}

}  // namespace detail

using namespace detail;

// ---- copies and conversions ----------------------------------------------------------------

// Each is the identity for the gradient (cast's converts it back to the input's dtype).

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = materialize(x);
  record(out, "contiguous", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor clone(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  Tensor src = materialize(x);
  std::memcpy(out.raw_data(), src.raw_data(), static_cast<size_t>(x.numel()) * dtype_size(x.dtype()));
  record(out, "clone", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor cast(const Tensor& x, DType target) {
  if (target == x.dtype()) return x;
  Tensor src = materialize(x);
  Tensor out = Tensor::empty(x.shape(), target);
  kernels::cast(src.raw_data(), x.dtype(), out.raw_data(), target, x.numel());
  if (is_floating(x.dtype()) && is_floating(target)) {
    const DType source = x.dtype();
    record(out, "cast", {x}, [source](const Tensor& g) { return std::vector<Tensor>{cast(g, source)}; });
  }
  return out;
}

// ---- binary ops ----------------------------------------------------------------------------

namespace {
Tensor binary_forward(const Tensor& a, const Tensor& b, Binary op, const char* name) {
  check_same_float(a, b, name);
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  const Shape sa = broadcast_strides(a, out_shape);
  const Shape sb = broadcast_strides(b, out_shape);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  dispatch_float(a.dtype(), name, [&]<class T>() {
    kernels::binary(op, a.data<T>(), sa.data(), b.data<T>(), sb.data(), out.data<T>(), out_shape);
  });
  return out;
}
}  // namespace

// d(a+b) = (g, g), each summed back to its input's shape.
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, Binary::kAdd, "add");
  record(out, "add", {a, b}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{needs_grad(a) ? sum_to(g, a.shape()) : Tensor(),
                               needs_grad(b) ? sum_to(g, b.shape()) : Tensor()};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, Binary::kSub, "sub");
  record(out, "sub", {a, b}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{needs_grad(a) ? sum_to(g, a.shape()) : Tensor(),
                               needs_grad(b) ? sum_to(neg(g), b.shape()) : Tensor()};
  });
  return out;
}

// d(a*b) = (g*b, g*a)
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, Binary::kMul, "mul");
  record(out, "mul", {a, b}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{needs_grad(a) ? sum_to(mul(g, b), a.shape()) : Tensor(),
                               needs_grad(b) ? sum_to(mul(g, a), b.shape()) : Tensor()};
  });
  return out;
}

// d(a/b) = (g/b, -g*a/b^2)
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, Binary::kDiv, "div");
  record(out, "div", {a, b}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{
        needs_grad(a) ? sum_to(div(g, b), a.shape()) : Tensor(),
        needs_grad(b) ? sum_to(neg(div(mul(g, a), mul(b, b))), b.shape()) : Tensor()};
  });
  return out;
}

// max(a, b); the gradient goes to a where a >= b, else to b.
Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, Binary::kMax, "maximum");
  record(out, "maximum", {a, b}, [a, b](const Tensor& g) {
    const Tensor take_a = mask_to_float(greater_equal(a, b), a);
    return std::vector<Tensor>{needs_grad(a) ? sum_to(mul(g, take_a), a.shape()) : Tensor(),
                               needs_grad(b) ? sum_to(mul(g, rsub(1.0, take_a)), b.shape()) : Tensor()};
  });
  return out;
}

// ---- scalar and unary ops ------------------------------------------------------------------

Tensor add(const Tensor& a, double b) {
  Tensor out = apply_unary(a, static_cast<int>(Unary::kAddScalar), "add", b);
  record(out, "add_scalar", {a}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor mul(const Tensor& a, double b) {
  Tensor out = apply_unary(a, static_cast<int>(Unary::kMulScalar), "mul", b);
  record(out, "mul_scalar", {a}, [b](const Tensor& g) { return std::vector<Tensor>{mul(g, b)}; });
  return out;
}

Tensor rsub(double a, const Tensor& b) {
  Tensor out = apply_unary(b, static_cast<int>(Unary::kRsubScalar), "rsub", a);
  record(out, "rsub", {b}, [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
  return out;
}

Tensor neg(const Tensor& x) {
  Tensor out = apply_unary(x, static_cast<int>(Unary::kNeg), "neg");
  record(out, "neg", {x}, [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
  return out;
}

// d exp(x) = exp(x)
Tensor exp(const Tensor& x) {
  return unary_op(x, Unary::kExp, "exp", [](const Tensor&, const Tensor& y) { return y; });
}

// d log(x) = 1/x
Tensor log(const Tensor& x) {
  Tensor out = apply_unary(x, static_cast<int>(Unary::kLog), "log");
  record(out, "log", {x}, [x](const Tensor& g) { return std::vector<Tensor>{div(g, x)}; });
  return out;
}

// d sqrt(x) = 0.5 / sqrt(x)
Tensor sqrt(const Tensor& x) {
  Tensor out = apply_unary(x, static_cast<int>(Unary::kSqrt), "sqrt");
  if (any_requires_grad({&x})) {
    const Tensor y = out.detach();
    record(out, "sqrt", {x}, [y](const Tensor& g) { return std::vector<Tensor>{div(mul(g, 0.5), y)}; });
  }
  return out;
}

// d x^e = e x^(e-1)
Tensor pow(const Tensor& x, double exponent) {
  return unary_op(
      x, Unary::kPow, "pow",
      [exponent](const Tensor& in, const Tensor&) { return mul(pow(in, exponent - 1), exponent); },
      exponent);
}

// d |x| = sign(x)
Tensor abs(const Tensor& x) {
  return unary_op(x, Unary::kAbs, "abs", [](const Tensor& in, const Tensor&) { return sign(in); });
}

Tensor sign(const Tensor& x) { return apply_unary(x, static_cast<int>(Unary::kSign), "sign"); }

// The gradient passes where min <= x <= max, as in PyTorch.
Tensor clamp(const Tensor& x, double min, double max) {
  NEUTRINO_CHECK_VALUE(min <= max, "clamp: min {} is greater than max {}", min, max);
  return unary_op(
      x, Unary::kClamp, "clamp",
      [min, max](const Tensor& in, const Tensor&) {
        return apply_unary(in, static_cast<int>(Unary::kInRange), "clamp", min, max);
      },
      min, max);
}

// erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, any shape to the same shape;
// d erf(x) = 2/sqrt(pi) exp(-x^2), written in ops so that it is differentiable again.
Tensor erf(const Tensor& x) {
  return unary_op(x, Unary::kErf, "erf", [](const Tensor& in, const Tensor&) {
    return mul(exp(neg(mul(in, in))), 1.1283791670955126);  // 2 / sqrt(pi)
  });
}

// ---- comparisons and selection -------------------------------------------------------------

namespace {
// a op b with broadcasting, as bool; a and b of one dtype: float32, float64 or int64.
Tensor compare(const Tensor& a, const Tensor& b, kernels::Compare op, const char* name) {
  NEUTRINO_CHECK_VALUE(a.defined() && b.defined(), "{}: got an undefined tensor", name);
  NEUTRINO_CHECK_VALUE(
      a.dtype() == b.dtype(), "{}: dtypes differ ({} of shape {} and {} of shape {})", name,
      dtype_name(a.dtype()), a.shape_string(), dtype_name(b.dtype()), b.shape_string());
  NEUTRINO_CHECK_VALUE(is_floating(a.dtype()) || a.dtype() == DType::kInt64,
                       "{}: expected float or int64 tensors, got {}", name, dtype_name(a.dtype()));
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  const Shape sa = broadcast_strides(a, out_shape);
  const Shape sb = broadcast_strides(b, out_shape);
  Tensor out = Tensor::empty(out_shape, DType::kBool);
  auto run = [&]<class T>() {
    kernels::compare(op, a.data<T>(), sa.data(), b.data<T>(), sb.data(), out.data<bool>(),
                     out_shape);
  };
  if (a.dtype() == DType::kInt64) {
    run.template operator()<int64_t>();
  } else {
    dispatch_float(a.dtype(), name, run);
  }
  return out;
}
}  // namespace

using kernels::Compare;
Tensor greater(const Tensor& a, const Tensor& b) {
  return compare(a, b, Compare::kGreater, "greater");
}
Tensor greater_equal(const Tensor& a, const Tensor& b) {
  return compare(a, b, Compare::kGreaterEqual, "greater_equal");
}
Tensor equal(const Tensor& a, const Tensor& b) { return compare(a, b, Compare::kEqual, "equal"); }
Tensor less(const Tensor& a, const Tensor& b) { return compare(a, b, Compare::kLess, "less"); }
Tensor less_equal(const Tensor& a, const Tensor& b) {
  return compare(a, b, Compare::kLessEqual, "less_equal");
}
Tensor not_equal(const Tensor& a, const Tensor& b) {
  return compare(a, b, Compare::kNotEqual, "not_equal");
}

// d where(c, a, b) = (where(c, g, 0), where(c, 0, g)), each summed to its input's shape.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  NEUTRINO_CHECK_VALUE(cond.defined() && cond.dtype() == DType::kBool,
                       "where: condition must be a bool tensor");
  check_same_float(a, b, "where");
  const Shape out_shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  const Shape sc = broadcast_strides(cond, out_shape);
  const Shape sa = broadcast_strides(a, out_shape);
  const Shape sb = broadcast_strides(b, out_shape);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  dispatch_float(a.dtype(), "where", [&]<class T>() {
    kernels::where(cond.data<bool>(), sc.data(), a.data<T>(), sa.data(), b.data<T>(), sb.data(),
                   out.data<T>(), out_shape);
  });
  record(out, "where", {a, b}, [cond, a, b](const Tensor& g) {
    const Tensor zero = scalar_like(0.0, g);
    return std::vector<Tensor>{needs_grad(a) ? sum_to(where(cond, g, zero), a.shape()) : Tensor(),
                               needs_grad(b) ? sum_to(where(cond, zero, g), b.shape()) : Tensor()};
  });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_float(x, "masked_fill");
  NEUTRINO_CHECK_SHAPE(broadcast_shapes(x.shape(), mask.shape(), "masked_fill") == x.shape(),
                       "masked_fill: mask of shape {} does not broadcast to input shape {}",
                       mask.shape_string(), x.shape_string());
  return where(mask, scalar_like(value, x), x);
}

}  // namespace neutrino
