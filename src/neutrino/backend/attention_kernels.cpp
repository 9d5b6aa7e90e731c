// Scaled dot-product attention in the manner of FlashAttention-2 (Dao, 2023): a tile of queries
// meets the keys one tile at a time, keeping per query row the running maximum m and sum l of its
// exponentiated scores and the unnormalized output, so that memory grows with T, not T^2. The
// backward recomputes each tile's weights from the saved row log-sum-exp. Also the rotary
// position embedding, which the attention layers apply to q and k.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "neutrino/backend/fast_exp.h"
#include "neutrino/backend/kernels.h"
#include "neutrino/backend/parallel.h"

namespace neutrino::kernels {

namespace {

// Queries and keys per tile. A score row of 64 keys is four AVX-512 vectors of float, and a
// 64 x 64 tile with its transposed key tile stays in L1 for head dims up to 64.
constexpr int64_t kRows = 64, kCols = 64;
// Tiles of fewer query rows (a decode step's single query) take their scores as dot products:
// transposing a key tile pays off only when several rows read it.
constexpr int64_t kFewRows = 4;

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// One (b, h): its rows of q, k, v and mask, and the flat index of its weight (i, j) = (0, 0).
template <class T>
struct Head {
  const T *q, *k, *v;
  int64_t qs, ks, vs;  // row strides
  const bool* mask;    // null when there is none
  int64_t mi, mj;      // mask strides over i and j
  uint64_t index0;
};

template <class T>
Head<T> head_at(const AttentionProblem& p, int64_t bh, const T* q, const T* k, const T* v) {
  const int64_t b = bh / p.heads, h = bh % p.heads;
  Head<T> hd{};
  hd.q = q + b * p.q_strides[0] + h * p.q_strides[1];
  hd.k = k + b * p.k_strides[0] + h * p.k_strides[1];
  hd.v = v + b * p.v_strides[0] + h * p.v_strides[1];
  hd.qs = p.q_strides[2], hd.ks = p.k_strides[2], hd.vs = p.v_strides[2];
  hd.mask = p.mask ? p.mask + b * p.mask_strides[0] + h * p.mask_strides[1] : nullptr;
  hd.mi = p.mask_strides[2], hd.mj = p.mask_strides[3];
  hd.index0 = static_cast<uint64_t>(bh) * static_cast<uint64_t>(p.tq * p.tk);
  return hd;
}

// Query i sees keys [0, visible_end(i)) before the mask: all of them, or, causal, those up to
// its own position counted from the last key.
int64_t visible_end(const AttentionProblem& p, int64_t i) {
  if (!p.causal) return p.tk;
  return std::clamp(i + p.tk - p.tq + 1, int64_t{0}, p.tk);
}

// tile_t (n x kCols) = rows [j0, j0 + cols) of x (row stride xs) transposed, zero beyond cols.
template <class T>
void transpose_tile(const T* x, int64_t xs, int64_t j0, int64_t cols, int64_t n, T* tile_t) {
  std::fill(tile_t, tile_t + n * kCols, T(0));
  for (int64_t c = 0; c < cols; ++c) {
    const T* row = x + (j0 + c) * xs;
    for (int64_t e = 0; e < n; ++e) tile_t[e * kCols + c] = row[e];
  }
}

// out[c] = sum_e a[e] * tile_t[e, c] for the kCols columns: a row against a transposed tile, as
// n vector multiply-adds.
template <class T>
void row_times_tile(const T* __restrict a, int64_t n, const T* __restrict tile_t,
                    T* __restrict out) {
  T acc[kCols] = {};
  for (int64_t e = 0; e < n; ++e) {
    const T ae = a[e];
    const T* t = tile_t + e * kCols;
#pragma omp simd
    for (int64_t c = 0; c < kCols; ++c) acc[c] += ae * t[c];
  }
  std::copy(acc, acc + kCols, out);
}

template <class T>
T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t e = 0; e < n; ++e) acc += a[e] * b[e];
  return acc;
}

// Scales score row i of the key tile at j0 and sets the keys that query i may not see (past the
// tile's cols, past the causal limit, masked out) to -inf. Returns how many leading keys of the
// tile may be seen before the mask (<= 0: none).
template <class T>
int64_t scale_and_mask_row(const AttentionProblem& p, const Head<T>& hd, int64_t i, int64_t j0,
                           int64_t cols, T* __restrict row) {
  const int64_t limit = std::min(cols, visible_end(p, i) - j0);
  const T scale = static_cast<T>(p.scale);
#pragma omp simd
  for (int64_t c = 0; c < kCols; ++c) row[c] = c < limit ? row[c] * scale : kNegInf<T>;
  if (hd.mask) {
    const bool* m = hd.mask + i * hd.mi + j0 * hd.mj;
    for (int64_t c = 0; c < limit; ++c) {
      if (!m[c * hd.mj]) row[c] = kNegInf<T>;
    }
  }
  return limit;
}

// keep[c] = 1 / (1 - p) or 0: dropout's factor of weight (i, j0 + c), for c < limit.
template <class T>
void dropout_row(const AttentionProblem& p, const Head<T>& hd, int64_t i, int64_t j0,
                 int64_t limit, T* keep) {
  const uint64_t threshold = attention_dropout_threshold(p.dropout);
  const T factor = static_cast<T>(1.0 / (1.0 - p.dropout));
  const uint64_t at = hd.index0 + static_cast<uint64_t>(i * p.tk + j0);
  for (int64_t c = 0; c < limit; ++c) {
    keep[c] = attention_dropout_keep(p.seed, at + static_cast<uint64_t>(c), threshold) ? factor
                                                                                      : T(0);
  }
}

// Per-thread buffers of the forward: a tile's scores, the transposed key tile, and per row the
// running max, sum and unnormalized output.
template <class T>
struct ForwardScratch {
  std::vector<T> s, kt, m, l, acc, keep;
  explicit ForwardScratch(const AttentionProblem& p)
      : s(kRows * kCols), kt(p.d * kCols), m(kRows), l(kRows), acc(kRows * p.dv), keep(kCols) {}
};

// The online-softmax step of query row r (query i) against one scored key tile: rescale what the
// row held by exp(m_old - m_new), add exp(s - m_new) and those weights times v.
template <class T>
void forward_row(const AttentionProblem& p, const Head<T>& hd, int64_t i, int64_t r, int64_t j0,
                 int64_t cols, ForwardScratch<T>& w) {
  T* __restrict row = w.s.data() + r * kCols;
  const int64_t limit = scale_and_mask_row(p, hd, i, j0, cols, row);
  if (limit <= 0) return;
  T top = kNegInf<T>;
#pragma omp simd reduction(max : top)
  for (int64_t c = 0; c < kCols; ++c) top = std::max(top, row[c]);
  if (top == kNegInf<T>) return;  // every key of this tile masked out for this row
  const T m_new = std::max(w.m[r], top);
  const T alpha = fast_exp_nonpositive(w.m[r] - m_new);
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < kCols; ++c) {
    const T e = fast_exp_nonpositive(row[c] - m_new);
    row[c] = e;
    sum += e;
  }
  w.m[r] = m_new;
  w.l[r] = w.l[r] * alpha + sum;
  if (p.dropout > 0) {
    dropout_row(p, hd, i, j0, limit, w.keep.data());
    for (int64_t c = 0; c < limit; ++c) row[c] *= w.keep[c];
  }
  T* __restrict acc = w.acc.data() + r * p.dv;
#pragma omp simd
  for (int64_t e = 0; e < p.dv; ++e) acc[e] *= alpha;
  for (int64_t c = 0; c < limit; ++c) {
    const T pc = row[c];
    if (pc == T(0)) continue;
    const T* __restrict vr = hd.v + (j0 + c) * hd.vs;
#pragma omp simd
    for (int64_t e = 0; e < p.dv; ++e) acc[e] += pc * vr[e];
  }
}

// Queries [i0, i0 + rows) of one head against every key they may see; writes their rows of out
// and lse (both at the head).
template <class T>
void forward_tile(const AttentionProblem& p, const Head<T>& hd, int64_t i0, int64_t rows, T* out,
                  T* lse, ForwardScratch<T>& w) {
  std::fill(w.m.begin(), w.m.end(), kNegInf<T>);
  std::fill(w.l.begin(), w.l.end(), T(0));
  std::fill(w.acc.begin(), w.acc.end(), T(0));
  // The last row of the tile sees the most keys; tiles past it are skipped whole.
  const int64_t end = visible_end(p, i0 + rows - 1);
  for (int64_t j0 = 0; j0 < end; j0 += kCols) {
    const int64_t cols = std::min(kCols, end - j0);
    if (rows >= kFewRows) {
      transpose_tile(hd.k, hd.ks, j0, cols, p.d, w.kt.data());
      for (int64_t r = 0; r < rows; ++r) {
        row_times_tile(hd.q + (i0 + r) * hd.qs, p.d, w.kt.data(), w.s.data() + r * kCols);
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        T* row = w.s.data() + r * kCols;
        const T* qr = hd.q + (i0 + r) * hd.qs;
        for (int64_t c = 0; c < cols; ++c) row[c] = dot(qr, hd.k + (j0 + c) * hd.ks, p.d);
      }
    }
    for (int64_t r = 0; r < rows; ++r) forward_row(p, hd, i0 + r, r, j0, cols, w);
  }
  for (int64_t r = 0; r < rows; ++r) {
    T* o = out + (i0 + r) * p.dv;
    const T* acc = w.acc.data() + r * p.dv;
    const bool empty = !(w.l[r] > T(0));
    const T inv = empty ? T(0) : T(1) / w.l[r];
    for (int64_t e = 0; e < p.dv; ++e) o[e] = acc[e] * inv;
    lse[i0 + r] = empty ? std::numeric_limits<T>::infinity() : w.m[r] + std::log(w.l[r]);
  }
}

int64_t attention_macs(const AttentionProblem& p) {
  return p.batch * p.heads * p.tq * p.tk * (p.d + p.dv);
}

}  // namespace

template <class T>
void attention_forward(const AttentionProblem& p, const T* q, const T* k, const T* v, T* out,
                       T* lse) {
  const int64_t tiles = (p.tq + kRows - 1) / kRows, heads = p.batch * p.heads;
  parallel_for(heads * tiles, attention_macs(p) >= kGrainAttentionMacs,
               [&](int64_t begin, int64_t end) {
                 ForwardScratch<T> w(p);
                 for (int64_t task = begin; task < end; ++task) {
                   const int64_t bh = task / tiles, i0 = (task % tiles) * kRows;
                   forward_tile(p, head_at(p, bh, q, k, v), i0, std::min(kRows, p.tq - i0),
                                out + bh * p.tq * p.dv, lse + bh * p.tq, w);
                 }
               });
}

namespace {

// Per-thread buffers of the backward: the transposed k and v tiles, a row of weights, of their
// gradient and of dropout factors, and the key tile's dk and dv sums.
template <class T>
struct BackwardScratch {
  std::vector<T> kt, vt, prow, dprow, keep, dk, dv, rowdot;
  explicit BackwardScratch(const AttentionProblem& p)
      : kt(p.d * kCols), vt(p.dv * kCols), prow(kCols), dprow(kCols), keep(kCols),
        dk(kCols * p.d), dv(kCols * p.dv), rowdot(p.tq) {}
};

// Query i against the key tile at j0 (transposed in w.kt, w.vt): adds its terms to the tile's
// dk and dv sums and to dq's row i.
template <class T>
void backward_row(const AttentionProblem& p, const Head<T>& hd, int64_t i, int64_t j0,
                  int64_t cols, const T* lse, const T* go, T* dq, BackwardScratch<T>& w) {
  T* __restrict pr = w.prow.data();
  T* __restrict dpr = w.dprow.data();
  const T* qi = hd.q + i * hd.qs;
  const T* goi = go + i * p.dv;
  row_times_tile(qi, p.d, w.kt.data(), pr);
  const int64_t limit = scale_and_mask_row(p, hd, i, j0, cols, pr);
  if (limit <= 0 || lse[i] == std::numeric_limits<T>::infinity()) return;
  const T shift = lse[i];
#pragma omp simd
  for (int64_t c = 0; c < kCols; ++c) pr[c] = fast_exp_nonpositive(pr[c] - shift);
  row_times_tile(goi, p.dv, w.vt.data(), dpr);  // dP (of the dropped weights) = dO V^T
  const bool drop = p.dropout > 0;
  if (drop) dropout_row(p, hd, i, j0, limit, w.keep.data());
  const T rowdot = w.rowdot[i], scale = static_cast<T>(p.scale);
  T* __restrict dqi = dq + i * p.d;
  for (int64_t c = 0; c < limit; ++c) {
    const T keep = drop ? w.keep[c] : T(1);
    const T pc = pr[c], pd = pc * keep;
    // dS = P * (dP - rowsum(dO * O)), times scale for both dq and dk.
    const T ds = pc * (dpr[c] * keep - rowdot) * scale;
    if (pd != T(0)) {
      T* __restrict dvc = w.dv.data() + c * p.dv;
#pragma omp simd
      for (int64_t e = 0; e < p.dv; ++e) dvc[e] += pd * goi[e];
    }
    if (ds == T(0)) continue;
    T* __restrict dkc = w.dk.data() + c * p.d;
    const T* __restrict kc = hd.k + (j0 + c) * hd.ks;
#pragma omp simd
    for (int64_t e = 0; e < p.d; ++e) {
      dkc[e] += ds * qi[e];
      dqi[e] += ds * kc[e];
    }
  }
}

// The backward of one head: out, lse, go, dq, dk, dv at the head (contiguous rows).
template <class T>
void backward_head(const AttentionProblem& p, const Head<T>& hd, const T* out, const T* lse,
                   const T* go, T* dq, T* dk, T* dv, BackwardScratch<T>& w) {
  for (int64_t i = 0; i < p.tq; ++i) w.rowdot[i] = dot(go + i * p.dv, out + i * p.dv, p.dv);
  std::fill(dq, dq + p.tq * p.d, T(0));
  for (int64_t j0 = 0; j0 < p.tk; j0 += kCols) {
    const int64_t cols = std::min(kCols, p.tk - j0);
    transpose_tile(hd.k, hd.ks, j0, cols, p.d, w.kt.data());
    transpose_tile(hd.v, hd.vs, j0, cols, p.dv, w.vt.data());
    std::fill(w.dk.begin(), w.dk.end(), T(0));
    std::fill(w.dv.begin(), w.dv.end(), T(0));
    // Causal: the queries before this one see none of the tile.
    const int64_t first = p.causal ? std::clamp(j0 - (p.tk - p.tq), int64_t{0}, p.tq) : 0;
    for (int64_t i = first; i < p.tq; ++i) backward_row(p, hd, i, j0, cols, lse, go, dq, w);
    std::copy(w.dk.begin(), w.dk.begin() + cols * p.d, dk + j0 * p.d);
    std::copy(w.dv.begin(), w.dv.begin() + cols * p.dv, dv + j0 * p.dv);
  }
}

}  // namespace

template <class T>
void attention_backward(const AttentionProblem& p, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const T* grad_out, T* dq, T* dk, T* dv) {
  // Whole heads per thread: a head's dk and dv sum over all its queries, so splitting a head
  // would need a reduction between threads.
  parallel_for(p.batch * p.heads, attention_macs(p) >= kGrainAttentionMacs,
               [&](int64_t begin, int64_t end) {
                 BackwardScratch<T> w(p);
                 for (int64_t bh = begin; bh < end; ++bh) {
                   backward_head(p, head_at(p, bh, q, k, v), out + bh * p.tq * p.dv,
                                 lse + bh * p.tq, grad_out + bh * p.tq * p.dv, dq + bh * p.tq * p.d,
                                 dk + bh * p.tk * p.d, dv + bh * p.tk * p.dv, w);
                 }
               });
}

template <class T>
void attention_dropout_mask(const AttentionProblem& p, T* mask) {
  const int64_t n = p.batch * p.heads * p.tq * p.tk;
  const uint64_t threshold = attention_dropout_threshold(p.dropout);
  const T factor = static_cast<T>(1.0 / (1.0 - p.dropout));
  for (int64_t i = 0; i < n; ++i) {
    mask[i] = attention_dropout_keep(p.seed, static_cast<uint64_t>(i), threshold) ? factor : T(0);
  }
}

template <class T>
void rotary_embedding(const T* x, T* y, int64_t planes, int64_t steps, int64_t d, int64_t offset,
                      double base, bool inverse) {
  const int64_t half = d / 2;
  // The angles once per call, in double (positions reach the thousands).
  std::vector<T> cosines(static_cast<size_t>(steps * half)), sines(cosines.size());
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(offset + t) *
                           std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(d));
      cosines[t * half + i] = static_cast<T>(std::cos(angle));
      sines[t * half + i] = static_cast<T>(inverse ? -std::sin(angle) : std::sin(angle));
    }
  }
  parallel_for(planes, planes * steps * d >= kGrainElements, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      for (int64_t t = 0; t < steps; ++t) {
        const T* __restrict xr = x + (plane * steps + t) * d;
        T* __restrict yr = y + (plane * steps + t) * d;
        const T* __restrict c = cosines.data() + t * half;
        const T* __restrict s = sines.data() + t * half;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = xr[i], x2 = xr[i + half];
          yr[i] = x1 * c[i] - x2 * s[i];
          yr[i + half] = x2 * c[i] + x1 * s[i];
        }
      }
    }
  });
}

#define NEUTRINO_INSTANTIATE(T)                                                                \
  template void attention_forward<T>(const AttentionProblem&, const T*, const T*, const T*, T*, \
                                     T*);                                                      \
  template void attention_backward<T>(const AttentionProblem&, const T*, const T*, const T*,   \
                                      const T*, const T*, const T*, T*, T*, T*);               \
  template void attention_dropout_mask<T>(const AttentionProblem&, T*);                       \
  template void rotary_embedding<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t, double,  \
                                    bool);

NEUTRINO_INSTANTIATE(float)
NEUTRINO_INSTANTIATE(double)
#undef NEUTRINO_INSTANTIATE

}  // namespace neutrino::kernels
