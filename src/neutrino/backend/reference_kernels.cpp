// Plain reference kernels: straightforward loops, written for clarity and auto-vectorization.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <type_traits>

#include "neutrino/backend/fast_exp.h"
#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"
#include "neutrino/backend/relu.h"

namespace neutrino::kernels {

namespace {
template <class T>
inline T sigmoid_of(T x) {
  // Two branches keep exp() from overflowing for large |x|.
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}
constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;  // 1 / sqrt(2 pi)
}  // namespace

namespace {
template <class T>
void unary_serial(Unary op, const T* x, T* y, int64_t n, double alpha, double beta);

// GELU and its derivative, one value: erf/tanh/exp are fast_exp.h's, vectorizable for float and
// std:: for double (the reference the gradient checks read). The form is a template argument so
// that each loop body is branch-free and vectorizes.
template <bool kExact, class T>
inline T gelu_value(T x) {
  if constexpr (kExact) {
    return T(0.5) * x * (T(1) + fast_erf(x * T(kInvSqrt2)));
  } else {
    const T inner = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
    return T(0.5) * x * (T(1) + fast_tanh(inner));
  }
}

// d/dx x Phi(x) = Phi(x) + x phi(x); the tanh form's derivative by the chain rule. phi's exp
// underflows to ~1e-38 rather than 0 beyond |x| = 13 in float, harmless next to Phi(x).
template <bool kExact, class T>
inline T gelu_derivative(T x) {
  if constexpr (kExact) {
    const T cdf = T(0.5) * (T(1) + fast_erf(x * T(kInvSqrt2)));
    const T pdf = T(kInvSqrt2Pi) * fast_exp(T(-0.5) * x * x);
    return cdf + x * pdf;
  } else {
    const T x2 = x * x;
    const T t = fast_tanh(T(kSqrt2OverPi) * (x + T(0.044715) * x2 * x));
    const T dinner = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x2);
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner;
  }
}

template <bool kExact, class T>
void gelu_values(const T* __restrict x, T* __restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_value<kExact>(x[i]);
}

template <bool kExact, class T>
void gelu_derivatives(const T* __restrict x, T* __restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_derivative<kExact>(x[i]);
}

template <bool kExact, class T>
void gelu_backward_serial(const T* __restrict x, const T* __restrict g, T* __restrict dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dx[i] = g[i] * gelu_derivative<kExact>(x[i]);
}

// f(begin, count) over [0, n) in fixed chunks of kUnaryChunk spread over the threads (one call
// when small); each element's result does not depend on the split, so results stay bit-identical.
template <class F>
void for_chunks(int64_t n, F&& f) {
  if (n < 2 * kUnaryChunk) {
    f(int64_t{0}, n);
    return;
  }
  const int64_t chunks = (n + kUnaryChunk - 1) / kUnaryChunk;
  parallel_for(chunks, true, [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) {
      const int64_t begin = c * kUnaryChunk;
      f(begin, std::min(kUnaryChunk, n - begin));
    }
  });
}

template <class T>
void gelu_serial(Unary op, const T* x, T* y, int64_t n) {
  switch (op) {
    case Unary::kGeluErf: return gelu_values<true>(x, y, n);
    case Unary::kGeluTanh: return gelu_values<false>(x, y, n);
    case Unary::kGeluErfGrad: return gelu_derivatives<true>(x, y, n);
    default: return gelu_derivatives<false>(x, y, n);
  }
}
}  // namespace

// dx = g * gelu'(x) in one pass (GELU's backward), chunked over the threads as unary is.
template <class T>
void gelu_backward(bool exact, const T* x, const T* g, T* dx, int64_t n) {
  for_chunks(n, [&](int64_t begin, int64_t count) {
    if (exact) {
      gelu_backward_serial<true>(x + begin, g + begin, dx + begin, count);
    } else {
      gelu_backward_serial<false>(x + begin, g + begin, dx + begin, count);
    }
  });
}
template void gelu_backward<float>(bool, const float*, const float*, float*, int64_t);
template void gelu_backward<double>(bool, const double*, const double*, double*, int64_t);

// Large arrays are split into fixed chunks over the threads; each element's result does not
// depend on the split, so results stay bit-identical.
template <class T>
void unary(Unary op, const T* x, T* y, int64_t n, double alpha, double beta) {
  for_chunks(n, [&](int64_t begin, int64_t count) {
    unary_serial(op, x + begin, y + begin, count, alpha, beta);
  });
}

namespace {
template <class T>
void unary_serial(Unary op, const T* x, T* y, int64_t n, double alpha, double beta) {
  const T a = static_cast<T>(alpha);
  const T b = static_cast<T>(beta);
  switch (op) {
    case Unary::kNeg:
      for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
      return;
    case Unary::kExp:
      for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
      return;
    case Unary::kLog:
      for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
      return;
    case Unary::kSqrt:
      for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
      return;
    case Unary::kAbs:
      for (int64_t i = 0; i < n; ++i) y[i] = std::abs(x[i]);
      return;
    case Unary::kSign:
      for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>((x[i] > 0) - (x[i] < 0));
      return;
    case Unary::kPow:
      if (alpha == 2.0) {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = std::pow(x[i], a);
      }
      return;
    case Unary::kClamp:
      for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], a), b);
      return;
    case Unary::kRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = relu_of(x[i]);
      return;
    case Unary::kLeakyRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0 ? x[i] : a * x[i];
      return;
    case Unary::kSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_of(x[i]);
      return;
    case Unary::kTanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      return;
    case Unary::kSoftplus:
      // log(1 + e^x) = max(x, 0) + log1p(e^-|x|), exact and overflow-free.
      for (int64_t i = 0; i < n; ++i) {
        y[i] = std::max(x[i], T(0)) + std::log1p(std::exp(-std::abs(x[i])));
      }
      return;
    case Unary::kSilu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid_of(x[i]);
      return;
    case Unary::kErf:
      for (int64_t i = 0; i < n; ++i) y[i] = std::erf(x[i]);
      return;
    case Unary::kGeluErf:
    case Unary::kGeluTanh:
    case Unary::kGeluErfGrad:
    case Unary::kGeluTanhGrad:
      gelu_serial(op, x, y, n);
      return;
    case Unary::kStep:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > a ? T(1) : b;
      return;
    case Unary::kInRange:
      for (int64_t i = 0; i < n; ++i) y[i] = (x[i] >= a && x[i] <= b) ? T(1) : T(0);
      return;
    case Unary::kAddScalar:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] + a;
      return;
    case Unary::kMulScalar:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * a;
      return;
    case Unary::kRsubScalar:
      for (int64_t i = 0; i < n; ++i) y[i] = a - x[i];
      return;
  }
}

}  // namespace

namespace {
// How an operand is read across the innermost block of dims: element by element, or one value
// repeated (a broadcast).
enum class Run { kContiguous, kRepeated };

// The longest suffix of dims over which both operands are read as a contiguous run or a repeated
// value, so the inner loop is a plain (vectorizable) loop; the outer dims go through
// strided_for_each.
template <class T, class F>
void binary_loop(const T* a, const int64_t* sa, const T* b, const int64_t* sb, T* out,
                 const Shape& shape, F f) {
  if (shape_numel(shape) == 0) return;
  const int64_t rank = static_cast<int64_t>(shape.size());
  int64_t inner = 1, split = rank;
  Run ra = Run::kContiguous, rb = Run::kContiguous;
  for (int64_t d = rank - 1; d >= 0; --d) {
    if (shape[d] == 1) {
      --split;
      continue;
    }
    const bool first = inner == 1;
    auto run_of = [&](int64_t stride, Run current) -> std::optional<Run> {
      if (stride == inner && (first || current == Run::kContiguous)) return Run::kContiguous;
      if (stride == 0 && (first || current == Run::kRepeated)) return Run::kRepeated;
      return std::nullopt;
    };
    const auto na = run_of(sa[d], ra), nb = run_of(sb[d], rb);
    if (!na || !nb) break;
    ra = *na;
    rb = *nb;
    inner *= shape[d];
    --split;
  }
  const Shape outer_shape(shape.begin(), shape.begin() + split);
  const Shape out_strides = contiguous_strides(shape);
  auto inner_loop = [&](const T* pa, const T* pb, T* po) {
    if (ra == Run::kContiguous && rb == Run::kContiguous) {
      for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], pb[i]);
    } else if (ra == Run::kContiguous) {
      const T vb = *pb;
      for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], vb);
    } else if (rb == Run::kContiguous) {
      const T va = *pa;
      for (int64_t i = 0; i < inner; ++i) po[i] = f(va, pb[i]);
    } else {
      const T v = f(*pa, *pb);
      for (int64_t i = 0; i < inner; ++i) po[i] = v;
    }
  };
  if (outer_shape.empty()) {
    inner_loop(a, b, out);
    return;
  }
  strided_for_each<3>(outer_shape, {sa, sb, out_strides.data()},
                      [&](const std::array<int64_t, 3>& o) { inner_loop(a + o[0], b + o[1], out + o[2]); });
}
}  // namespace

template <class T>
void binary(Binary op, const T* a, const int64_t* sa, const T* b, const int64_t* sb, T* out,
            const Shape& shape) {
  switch (op) {
    case Binary::kAdd:
      return binary_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u + v; });
    case Binary::kSub:
      return binary_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u - v; });
    case Binary::kMul:
      return binary_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u * v; });
    case Binary::kDiv:
      return binary_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u / v; });
    case Binary::kMax:
      return binary_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u >= v ? u : v; });
  }
}

namespace {
template <class T, class F>
void compare_loop(const T* a, const int64_t* sa, const T* b, const int64_t* sb, bool* out,
                  const Shape& shape, F f) {
  const Shape so = contiguous_strides(shape);
  strided_for_each<3>(shape, {sa, sb, so.data()}, [&](const std::array<int64_t, 3>& at) {
    out[at[2]] = f(a[at[0]], b[at[1]]);
  });
}
}  // namespace

template <class T>
void compare(Compare op, const T* a, const int64_t* sa, const T* b, const int64_t* sb, bool* out,
             const Shape& shape) {
  switch (op) {
    case Compare::kGreater:
      return compare_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u > v; });
    case Compare::kGreaterEqual:
      return compare_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u >= v; });
    case Compare::kEqual:
      return compare_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u == v; });
    case Compare::kLess:
      return compare_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u < v; });
    case Compare::kLessEqual:
      return compare_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u <= v; });
    case Compare::kNotEqual:
      return compare_loop(a, sa, b, sb, out, shape, [](T u, T v) { return u != v; });
  }
}

template <class T>
void where(const bool* cond, const int64_t* sc, const T* a, const int64_t* sa, const T* b,
           const int64_t* sb, T* out, const Shape& shape) {
  const Shape so = contiguous_strides(shape);
  strided_for_each<4>(shape, {sc, sa, sb, so.data()}, [&](const std::array<int64_t, 4>& at) {
    out[at[3]] = cond[at[0]] ? a[at[1]] : b[at[2]];
  });
}

void cast(const void* from, DType from_dtype, void* to, DType to_dtype, int64_t n) {
  if (from_dtype == DType::kFloat32 && to_dtype == DType::kBFloat16) {
    convert(static_cast<const float*>(from), static_cast<bfloat16*>(to), n);
    return;
  }
  if (from_dtype == DType::kBFloat16 && to_dtype == DType::kFloat32) {
    convert(static_cast<const bfloat16*>(from), static_cast<float*>(to), n);
    return;
  }
  dispatch_all(from_dtype, [&]<class S>() {
    dispatch_all(to_dtype, [&]<class D>() {
      const S* p = static_cast<const S*>(from);
      D* q = static_cast<D*>(to);
      for (int64_t i = 0; i < n; ++i) q[i] = static_cast<D>(p[i]);
    });
  });
}

template <class T>
void copy_strided(const T* src, const Shape& shape, const int64_t* src_strides, T* dst,
                  const int64_t* dst_strides) {
  strided_for_each<2>(shape, {src_strides, dst_strides},
                      [&](const std::array<int64_t, 2>& at) { dst[at[1]] = src[at[0]]; });
}

template <class T>
void copy_strided(const T* src, const Shape& shape_in, const int64_t* strides_in, T* dst) {
  // Adjacent dims that are one run in the source are one dim of the copy (the destination is
  // contiguous, so they are one run there too): (N, C, H, W) channels-last copies as (N, C, HW),
  // whose tiles are wider. Size-1 dims drop out.
  Shape shape, src_strides;
  for (size_t d = 0; d < shape_in.size(); ++d) {
    if (shape_in[d] == 1) continue;
    if (!shape.empty() && src_strides.back() == strides_in[d] * shape_in[d]) {
      shape.back() *= shape_in[d];
      src_strides.back() = strides_in[d];
      continue;
    }
    shape.push_back(shape_in[d]);
    src_strides.push_back(strides_in[d]);
  }
  if (shape.empty()) {
    if (shape_numel(shape_in) == 1) dst[0] = src[0];
    return;
  }
  const int64_t* strides = src_strides.data();
  const Shape dst_strides = contiguous_strides(shape);
  const size_t rank = shape.size();
  if (rank == 1 && strides[0] == 1) {
    std::copy(src, src + shape[0], dst);
    return;
  }
  if (rank >= 2 && shape_numel(shape) > 0) {
    const size_t last = rank - 1;
    // A dim other than the last that is contiguous in the source (the channel dim of a
    // channels-last tensor being made NCHW, or the reverse): copy 2-D tiles of that dim by the
    // last one, so both sides are read and written a cache line at a time.
    size_t unit = rank;
    for (size_t d = 0; d < last; ++d) {
      if (strides[d] == 1 && shape[d] > 1) unit = d;
    }
    if (strides[last] != 1 && shape[last] > 1 && unit < rank) {
      Shape outer_shape, outer_src, outer_dst;
      for (size_t d = 0; d < last; ++d) {
        if (d == unit) continue;
        outer_shape.push_back(shape[d]);
        outer_src.push_back(strides[d]);
        outer_dst.push_back(dst_strides[d]);
      }
      const int64_t rows = shape[unit], cols = shape[last];
      const int64_t src_col = strides[last], dst_row = dst_strides[unit];
      constexpr int64_t kTile = 16;
      auto tiles = [&](const std::array<int64_t, 2>& o) {
        const T* in = src + o[0];
        T* out = dst + o[1];
        for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
          for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
            const int64_t i1 = std::min(rows, i0 + kTile), j1 = std::min(cols, j0 + kTile);
            for (int64_t j = j0; j < j1; ++j) {
              for (int64_t i = i0; i < i1; ++i) out[i * dst_row + j] = in[i + j * src_col];
            }
          }
        }
      };
      // Large copies (a batch of images) spread their outermost dim over the cores.
      if (!outer_shape.empty() && outer_shape[0] > 1 && shape_numel(shape) > kGrainCopy) {
        const Shape inner_shape(outer_shape.begin() + 1, outer_shape.end());
        parallel_for(outer_shape[0], true, [&](int64_t first, int64_t stop) {
          for (int64_t b = first; b < stop; ++b) {
            strided_for_each<2>(inner_shape, {outer_src.data() + 1, outer_dst.data() + 1},
                                [&](const std::array<int64_t, 2>& o) {
                                  tiles({o[0] + b * outer_src[0], o[1] + b * outer_dst[0]});
                                });
          }
        });
        return;
      }
      strided_for_each<2>(outer_shape, {outer_src.data(), outer_dst.data()}, tiles);
      return;
    }
    if (strides[last] == 1) {
      // Rows are contiguous on both sides: copy them whole.
      const Shape outer_shape(shape.begin(), shape.end() - 1);
      const int64_t n = shape[last];
      strided_for_each<2>(outer_shape, {strides, dst_strides.data()},
                          [&](const std::array<int64_t, 2>& o) {
                            std::copy(src + o[0], src + o[0] + n, dst + o[1]);
                          });
      return;
    }
  }
  strided_for_each<2>(shape, {strides, dst_strides.data()},
                      [&](const std::array<int64_t, 2>& o) { dst[o[1]] = src[o[0]]; });
}

namespace {
// Strides that map an index of `shape` to its place in the keepdim output (0 on reduced dims).
Shape reduced_strides(const Shape& shape, const Shape& keep_shape) {
  Shape strides = contiguous_strides(keep_shape);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (keep_shape[d] == 1) strides[d] = 0;
  }
  return strides;
}
}  // namespace

template <class T>
void reduce_sum(const T* x, const Shape& shape, const Shape& keep_shape, T* out) {
  const int64_t out_n = shape_numel(keep_shape);
  std::fill(out, out + out_n, T(0));
  if (shape_numel(shape) == 0) return;
  // The innermost block of dims that are all reduced or all kept runs as a plain loop: a row sum
  // into one output, or a row added onto an output row.
  const int64_t rank = static_cast<int64_t>(shape.size());
  int64_t inner = 1, split = rank;
  int kind = -1;  // 1: inner dims reduced, 0: kept
  for (int64_t d = rank - 1; d >= 0; --d) {
    if (shape[d] == 1) {
      --split;
      continue;
    }
    const int reduced = keep_shape[d] == 1 ? 1 : 0;
    if (kind >= 0 && reduced != kind) break;
    kind = reduced;
    inner *= shape[d];
    --split;
  }
  const Shape outer(shape.begin(), shape.begin() + split);
  const Shape x_strides = contiguous_strides(shape);
  const Shape out_strides = reduced_strides(shape, keep_shape);
  auto block = [&](const T* xs, T* os) {
    if (kind == 1) {
      T total = 0;
      for (int64_t i = 0; i < inner; ++i) total += xs[i];
      *os += total;
    } else {
      for (int64_t i = 0; i < inner; ++i) os[i] += xs[i];
    }
  };
  if (outer.empty()) {
    block(x, out);
    return;
  }
  strided_for_each<2>(outer, {x_strides.data(), out_strides.data()},
                      [&](const std::array<int64_t, 2>& o) { block(x + o[0], out + o[1]); });
}

template <class T>
void reduce_max(const T* x, const Shape& shape, const Shape& keep_shape, T* out) {
  const int64_t out_n = shape_numel(keep_shape);
  std::fill(out, out + out_n, -std::numeric_limits<T>::infinity());
  const Shape x_strides = contiguous_strides(shape);
  const Shape out_strides = reduced_strides(shape, keep_shape);
  strided_for_each<2>(shape, {x_strides.data(), out_strides.data()},
                      [&](const std::array<int64_t, 2>& o) {
                        // NaN propagates, as in NumPy and PyTorch.
                        const T v = x[o[0]];
                        if (v > out[o[1]] || std::isnan(v)) out[o[1]] = v;
                      });
}

template <class T>
void argmax(const T* x, int64_t outer, int64_t n, int64_t inner, int64_t* out) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* row = x + o * n * inner + i;
      int64_t best = 0;
      for (int64_t j = 1; j < n; ++j) {
        if (row[j * inner] > row[best * inner]) best = j;
      }
      out[o * inner + i] = best;
    }
  }
}

template <class T>
void reference::gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_row, int64_t a_col,
                     const T* b, int64_t b_row, int64_t b_col, T* c, bool accumulate) {
  if (!accumulate) std::fill(c, c + m * n, T(0));
  for (int64_t i = 0; i < m; ++i) {
    T* c_row = c + i * n;
    for (int64_t p = 0; p < k; ++p) {
      const T a_ip = a[i * a_row + p * a_col];
      const T* b_row_p = b + p * b_row;
      if (b_col == 1) {
        for (int64_t j = 0; j < n; ++j) c_row[j] += a_ip * b_row_p[j];
      } else {
        for (int64_t j = 0; j < n; ++j) c_row[j] += a_ip * b_row_p[j * b_col];
      }
    }
  }
}

template <class T>
void cumsum(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool reverse) {
  for (int64_t o = 0; o < outer; ++o) {
    const T* xo = x + o * n * inner;
    T* yo = y + o * n * inner;
    // Row by row along the scanned dim, so the inner loop runs over contiguous memory.
    for (int64_t step = 0; step < n; ++step) {
      const int64_t j = reverse ? n - 1 - step : step;
      const T* xr = xo + j * inner;
      T* yr = yo + j * inner;
      if (step == 0) {
        std::copy(xr, xr + inner, yr);
      } else {
        const T* prev = yo + (reverse ? j + 1 : j - 1) * inner;
        for (int64_t i = 0; i < inner; ++i) yr[i] = prev[i] + xr[i];
      }
    }
  }
}

template <class T>
void triangle(const T* x, T* y, int64_t batch, int64_t rows, int64_t cols, int64_t k, bool lower) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < rows; ++i) {
      const T* xr = x + (b * rows + i) * cols;
      T* yr = y + (b * rows + i) * cols;
      for (int64_t j = 0; j < cols; ++j) {
        const bool keep = lower ? j - i <= k : j - i >= k;
        yr[j] = keep ? xr[j] : T(0);
      }
    }
  }
}

template <class T>
void arange(T* out, int64_t n, double start, double step) {
  if constexpr (std::is_integral_v<T>) {
    const auto s = static_cast<int64_t>(start), d = static_cast<int64_t>(step);
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(s + i * d);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(start + static_cast<double>(i) * step);
  }
}

template <class T>
void softmax(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* xr = x + o * n * inner + i;
      T* yr = y + o * n * inner + i;
      // Subtracting the max keeps exp() finite for any input.
      T max_v = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j < n; ++j) max_v = std::max(max_v, xr[j * inner]);
      T total = 0;
      for (int64_t j = 0; j < n; ++j) total += std::exp(xr[j * inner] - max_v);
      if (log) {
        const T log_total = std::log(total);
        for (int64_t j = 0; j < n; ++j) yr[j * inner] = xr[j * inner] - max_v - log_total;
      } else {
        for (int64_t j = 0; j < n; ++j) yr[j * inner] = std::exp(xr[j * inner] - max_v) / total;
      }
    }
  }
}

template <class T>
void im2col(const T* image, const ConvGeometry& g, T* columns, int64_t ld) {
  const int64_t plane = ld;
  for (int64_t c = 0; c < g.group_channels(); ++c) {
    for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
      for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
        T* col = columns + ((c * g.kernel_h + ky) * g.kernel_w + kx) * plane;
        for (int64_t oy = 0; oy < g.out_h; ++oy) {
          const int64_t iy = oy * g.stride_h - g.pad_top + ky * g.dilation_h;
          T* out_row = col + oy * g.out_w;
          if (iy < 0 || iy >= g.height) {
            std::fill(out_row, out_row + g.out_w, T(0));
            continue;
          }
          const T* in_row = image + (c * g.height + iy) * g.width;
          for (int64_t ox = 0; ox < g.out_w; ++ox) {
            const int64_t ix = ox * g.stride_w - g.pad_left + kx * g.dilation_w;
            out_row[ox] = (ix >= 0 && ix < g.width) ? in_row[ix] : T(0);
          }
        }
      }
    }
  }
}

template <class T>
void col2im(const T* columns, const ConvGeometry& g, T* image, int64_t ld) {
  const int64_t plane = ld;
  for (int64_t c = 0; c < g.group_channels(); ++c) {
    for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
      for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
        const T* col = columns + ((c * g.kernel_h + ky) * g.kernel_w + kx) * plane;
        for (int64_t oy = 0; oy < g.out_h; ++oy) {
          const int64_t iy = oy * g.stride_h - g.pad_top + ky * g.dilation_h;
          if (iy < 0 || iy >= g.height) continue;
          T* in_row = image + (c * g.height + iy) * g.width;
          for (int64_t ox = 0; ox < g.out_w; ++ox) {
            const int64_t ix = ox * g.stride_w - g.pad_left + kx * g.dilation_w;
            if (ix >= 0 && ix < g.width) in_row[ix] += col[oy * g.out_w + ox];
          }
        }
      }
    }
  }
}

// Its own macro, since the copies serve every dtype and the arithmetic only float and double.
#define NEUTRINO_INSTANTIATE_COPIES(T)                                                         \
  template void copy_strided<T>(const T*, const Shape&, const int64_t*, T*);                   \
  template void copy_strided<T>(const T*, const Shape&, const int64_t*, T*, const int64_t*);

#define NEUTRINO_INSTANTIATE(T)                                                                \
  template void unary<T>(Unary, const T*, T*, int64_t, double, double);                        \
  template void binary<T>(Binary, const T*, const int64_t*, const T*, const int64_t*, T*,      \
                          const Shape&);                                                       \
  template void where<T>(const bool*, const int64_t*, const T*, const int64_t*, const T*,      \
                         const int64_t*, T*, const Shape&);                                    \
  NEUTRINO_INSTANTIATE_COPIES(T)                                                               \
  template void compare<T>(Compare, const T*, const int64_t*, const T*, const int64_t*, bool*, \
                           const Shape&);                                                      \
  template void reduce_sum<T>(const T*, const Shape&, const Shape&, T*);                       \
  template void reduce_max<T>(const T*, const Shape&, const Shape&, T*);                       \
  template void argmax<T>(const T*, int64_t, int64_t, int64_t, int64_t*);                      \
  template void reference::gemm<T>(int64_t, int64_t, int64_t, const T*, int64_t, int64_t,      \
                                   const T*, int64_t, int64_t, T*, bool);                      \
  template void softmax<T>(const T*, T*, int64_t, int64_t, int64_t, bool);                     \
  template void cumsum<T>(const T*, T*, int64_t, int64_t, int64_t, bool);                      \
  template void triangle<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t, bool);           \
  template void arange<T>(T*, int64_t, double, double);                                        \
  template void im2col<T>(const T*, const ConvGeometry&, T*, int64_t);                         \
  template void col2im<T>(const T*, const ConvGeometry&, T*, int64_t);

NEUTRINO_INSTANTIATE(float)
NEUTRINO_INSTANTIATE(double)
NEUTRINO_INSTANTIATE_COPIES(int64_t)
NEUTRINO_INSTANTIATE_COPIES(bool)
NEUTRINO_INSTANTIATE_COPIES(bfloat16)
template void compare<int64_t>(Compare, const int64_t*, const int64_t*, const int64_t*,
                               const int64_t*, bool*, const Shape&);
template void triangle<int64_t>(const int64_t*, int64_t*, int64_t, int64_t, int64_t, int64_t, bool);
template void triangle<bool>(const bool*, bool*, int64_t, int64_t, int64_t, int64_t, bool);
template void arange<int64_t>(int64_t*, int64_t, double, double);
#undef NEUTRINO_INSTANTIATE
#undef NEUTRINO_INSTANTIATE_COPIES

}  // namespace neutrino::kernels
