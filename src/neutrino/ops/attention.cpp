// Attention: scaled dot-product attention, fused (kernels::attention_forward / _backward, which
// never hold the Tq x Tk weights) and composed of matmul, where and softmax (the reference the
// tests hold the fused op to), and the rotary position embedding.
#include <cmath>
#include <limits>

#include "neutrino/backend/kernels.h"
#include "neutrino/core/random.h"
#include "neutrino/ops/op_util.h"

namespace neutrino {

using namespace detail;

namespace {

// Checks q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv), the mask (bool, broadcastable to
// (B, H, Tq, Tk)) and the options; returns the problem without pointers or strides.
kernels::AttentionProblem check_attention(const char* op, const Tensor& q, const Tensor& k,
                                          const Tensor& v, const Tensor& mask,
                                          const AttentionOptions& o) {
  for (const Tensor* t : {&q, &k, &v}) {
    NEUTRINO_CHECK_VALUE(t->defined(), "{}: q, k and v must be defined", op);
    NEUTRINO_CHECK_SHAPE(t->dim() == 4,
                         "{}: q, k and v must be (batch, heads, steps, dim), got q {}, k {}, v {}",
                         op, q.shape_string(), k.shape_string(), v.shape_string());
  }
  check_float(q, op);
  check_same_float(q, k, op);
  check_same_float(q, v, op);
  NEUTRINO_CHECK_SHAPE(k.size(0) == q.size(0) && v.size(0) == q.size(0) &&
                           k.size(1) == q.size(1) && v.size(1) == q.size(1),
                       "{}: q {}, k {} and v {} must share batch and heads", op, q.shape_string(),
                       k.shape_string(), v.shape_string());
  NEUTRINO_CHECK_SHAPE(k.size(3) == q.size(3), "{}: q {} and k {} must share the head dim", op,
                       q.shape_string(), k.shape_string());
  NEUTRINO_CHECK_SHAPE(v.size(2) == k.size(2), "{}: k {} and v {} must have the same steps", op,
                       k.shape_string(), v.shape_string());
  kernels::AttentionProblem p;
  p.batch = q.size(0), p.heads = q.size(1), p.tq = q.size(2), p.tk = k.size(2);
  p.d = q.size(3), p.dv = v.size(3);
  if (mask.defined()) {
    NEUTRINO_CHECK_VALUE(mask.dtype() == DType::kBool, "{}: the mask must be bool, got {}", op,
                         dtype_name(mask.dtype()));
    const Shape full{p.batch, p.heads, p.tq, p.tk};
    bool fits = mask.dim() <= 4;
    for (int64_t d = 0; fits && d < mask.dim(); ++d) {
      const int64_t m = mask.size(d), want = full[4 - mask.dim() + d];
      fits = m == want || m == 1;
    }
    NEUTRINO_CHECK_SHAPE(fits, "{}: mask {} does not broadcast to (batch, heads, Tq, Tk) = {}", op,
                         mask.shape_string(), shape_str(full));
  }
  NEUTRINO_CHECK_VALUE(o.dropout >= 0 && o.dropout < 1, "{}: dropout must be in [0, 1), got {}",
                       op, o.dropout);
  NEUTRINO_CHECK_VALUE(std::isfinite(o.scale), "{}: scale must be finite, got {}", op, o.scale);
  p.scale = o.scale != 0 ? o.scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(p.d, 1)));
  p.causal = o.causal;
  p.dropout = o.dropout;
  return p;
}

// t itself when its last dim is contiguous (any other strides: a slice of a KV cache), else a
// contiguous copy; no graph either way.
Tensor last_dim_dense(const Tensor& t) {
  return t.size(-1) <= 1 || t.strides().back() == 1 ? t.detach() : materialize(t);
}

std::array<int64_t, 3> row_strides(const Tensor& t) {
  return {t.strides()[0], t.strides()[1], t.strides()[2]};
}

}  // namespace

// out = softmax(q k^T * scale, masked) v, (B, H, Tq, Dv); saved for the backward: q, k, v (as
// given), out and the per-row log-sum-exp lse (B, H, Tq). Backward (a kernel, no double
// backward): with P = exp(q k^T * scale - lse) recomputed tile by tile and D = rowsum(dO * out),
// dv = P^T dO, dS = P * (dO v^T - D), dq = dS k * scale, dk = dS^T q * scale.
Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const Tensor& mask, const AttentionOptions& options) {
  const char* op = "scaled_dot_product_attention";
  kernels::AttentionProblem p = check_attention(op, q_in, k_in, v_in, mask, options);
  const Tensor q = last_dim_dense(q_in), k = last_dim_dense(k_in), v = last_dim_dense(v_in);
  p.q_strides = row_strides(q), p.k_strides = row_strides(k), p.v_strides = row_strides(v);
  if (mask.defined()) {
    const Shape s = broadcast_strides(mask, {p.batch, p.heads, p.tq, p.tk});
    p.mask = mask.data<bool>();
    p.mask_strides = {s[0], s[1], s[2], s[3]};
  }
  if (p.dropout > 0) p.seed = global_generator().next_u64();
  const DType dtype = q.dtype();
  Tensor out = Tensor::empty({p.batch, p.heads, p.tq, p.dv}, dtype);
  Tensor lse = Tensor::empty({p.batch, p.heads, p.tq}, dtype);
  dispatch_float(dtype, op, [&]<class T>() {
    kernels::attention_forward(p, q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(),
                               lse.data<T>());
  });
  if (!any_requires_grad({&q_in, &k_in, &v_in})) return out;
  const Tensor y = out.detach();
  // The mask's pointer stays valid: the closure holds the mask tensor.
  const Tensor mask_held = mask.defined() ? mask.detach() : Tensor();
  record(out, op, {q_in, k_in, v_in}, [=](const Tensor& g_in) {
    (void)mask_held;
    const Tensor g = materialize(g_in);
    Tensor dq = Tensor::empty(q.shape(), dtype), dk = Tensor::empty(k.shape(), dtype);
    Tensor dv = Tensor::empty(v.shape(), dtype);
    dispatch_float(dtype, op, [&]<class T>() {
      kernels::attention_backward(p, q.data<T>(), k.data<T>(), v.data<T>(), y.data<T>(),
                                  lse.data<T>(), g.data<T>(), dq.data<T>(), dk.data<T>(),
                                  dv.data<T>());
    });
    return std::vector<Tensor>{dq, dk, dv};
  });
  return out;
}

// The same function from differentiable ops: scores = q k^T * scale; the keys a query may not
// see get the lowest float (not -inf, so that a row with none left is a uniform softmax instead
// of NaN), and the weights are then multiplied by the 0/1 visibility, which zeroes such rows;
// dropout multiplies by the fused op's mask (kernels::attention_dropout_mask, same seed draw).
Tensor scaled_dot_product_attention_composite(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const Tensor& mask,
                                              const AttentionOptions& options) {
  const char* op = "scaled_dot_product_attention_composite";
  kernels::AttentionProblem p = check_attention(op, q, k, v, mask, options);
  const Tensor lowest = Tensor::scalar(-std::numeric_limits<float>::max(), q.dtype());
  Tensor scores = mul(matmul(q, transpose(k, 2, 3)), p.scale);
  Tensor visible;  // float 0/1, broadcastable to the scores
  auto hide = [&](const Tensor& allowed) {
    scores = where(allowed, scores, lowest);
    const Tensor f = mask_to_float(allowed, q);
    visible = visible.defined() ? mul(visible, f) : f;
  };
  if (mask.defined()) hide(mask);
  if (p.causal) hide(tril(Tensor::ones({p.tq, p.tk}, DType::kBool), p.tk - p.tq));
  Tensor weights = softmax(scores, -1);
  if (visible.defined()) weights = mul(weights, visible);
  if (p.dropout > 0) {
    p.seed = global_generator().next_u64();
    Tensor keep = Tensor::empty({p.batch, p.heads, p.tq, p.tk}, q.dtype());
    dispatch_float(q.dtype(), op, [&]<class T>() {
      kernels::attention_dropout_mask(p, keep.data<T>());
    });
    weights = mul(weights, keep);
  }
  return matmul(weights, v);
}

// y = R(angle) x on each pair (x_i, x_{i + D/2}), angle = (offset + t) * base^(-2i/D); the
// rotation is orthogonal, so dx = R(-angle) dy.
Tensor rotary_embedding(const Tensor& x, int64_t position_offset, double base) {
  const char* op = "rotary_embedding";
  check_float(x, op);
  NEUTRINO_CHECK_SHAPE(x.dim() == 4 && x.size(3) % 2 == 0,
                       "{}: x must be (batch, heads, steps, dim) with an even dim, got {}", op,
                       x.shape_string());
  NEUTRINO_CHECK_VALUE(base > 0 && std::isfinite(base), "{}: base must be positive, got {}", op,
                       base);
  NEUTRINO_CHECK_VALUE(position_offset >= 0, "{}: position_offset must be >= 0, got {}", op,
                       position_offset);
  const int64_t planes = x.size(0) * x.size(1), steps = x.size(2), d = x.size(3);
  auto rotate = [=](const Tensor& in, bool inverse) {
    const Tensor src = materialize(in);
    Tensor out = Tensor::empty(in.shape(), in.dtype());
    dispatch_float(in.dtype(), op, [&]<class T>() {
      kernels::rotary_embedding(src.data<T>(), out.data<T>(), planes, steps, d, position_offset,
                                base, inverse);
    });
    return out;
  };
  Tensor out = rotate(x, false);
  if (any_requires_grad({&x})) {
    record(out, op, {x}, [rotate](const Tensor& g) { return std::vector<Tensor>{rotate(g, true)}; });
  }
  return out;
}

}  // namespace neutrino
