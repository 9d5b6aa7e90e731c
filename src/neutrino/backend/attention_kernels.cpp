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
constexpr int64_t kRows = 32, kCols = 32;
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

// c (m x n) += a (m x k) . b (k x n), row-major with row strides lda, ldb, ldc: the products
// inside a tile pair. Blocks of 4 rows x 32 columns hold their sums in registers (16 AVX-512
// vectors of float) across the whole k loop, and each b row loaded serves 4 rows of a; the edges
// take blocks of fewer rows and a plain loop for the last columns.
template <int R, class T>
inline void gemm_block(int64_t k, const T* __restrict a, int64_t lda, const T* __restrict b,
                       int64_t ldb, T* __restrict c, int64_t ldc) {
  constexpr int64_t W = 32;
  T acc[R][W];
  for (int r = 0; r < R; ++r) {
#pragma omp simd
    for (int64_t w = 0; w < W; ++w) acc[r][w] = c[r * ldc + w];
  }
  for (int64_t p = 0; p < k; ++p) {
    const T* __restrict bp = b + p * ldb;
    for (int r = 0; r < R; ++r) {
      const T ar = a[r * lda + p];
#pragma omp simd
      for (int64_t w = 0; w < W; ++w) acc[r][w] += ar * bp[w];
    }
  }
  for (int r = 0; r < R; ++r) {
#pragma omp simd
    for (int64_t w = 0; w < W; ++w) c[r * ldc + w] = acc[r][w];
  }
}

template <class T>
void tile_gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
               T* c, int64_t ldc) {
  constexpr int64_t W = 32;
  const int64_t n_blocked = n / W * W;
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) {
    for (int64_t j = 0; j < n_blocked; j += W) {
      gemm_block<4>(k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc);
    }
  }
  for (; i < m; ++i) {
    for (int64_t j = 0; j < n_blocked; j += W) {
      gemm_block<1>(k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc);
    }
  }
  if (n_blocked == n) return;
  for (int64_t r = 0; r < m; ++r) {
    T* __restrict cr = c + r * ldc;
    for (int64_t p = 0; p < k; ++p) {
      const T ar = a[r * lda + p];
      const T* __restrict bp = b + p * ldb;
      for (int64_t j = n_blocked; j < n; ++j) cr[j] += ar * bp[j];
    }
  }
}

// tile (cols x rows, row stride kRows) = the first cols columns of x (rows x kCols) transposed.
template <class T>
void transpose_rows(const T* x, int64_t rows, int64_t cols, T* tile) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) tile[c * kRows + r] = x[r * kCols + c];
  }
}

// sum_e a[e] * b[e] as 16 lane sums folded in a tree at the end (an omp simd reduction ended
// in 16 dependent scalar adds, which made a decode step's dot products the bottleneck).
template <class T>
T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  constexpr int64_t L = 16;
  T part[L] = {};
  int64_t e = 0;
  for (; e + L <= n; e += L) {
#pragma omp simd
    for (int64_t l = 0; l < L; ++l) part[l] += a[e + l] * b[e + l];
  }
  for (; e < n; ++e) part[0] += a[e] * b[e];
  // Fixed trip counts, so that each level is one vector add.
  for (int64_t l = 0; l < 8; ++l) part[l] += part[l + 8];
  for (int64_t l = 0; l < 4; ++l) part[l] += part[l + 4];
  for (int64_t l = 0; l < 2; ++l) part[l] += part[l + 2];
  return part[0] + part[1];
}

// The largest of kCols values, as 16 lane maxima folded at the end (a max reduction over the row
// stayed scalar: std::max's NaN rule keeps GCC from reordering it).
template <class T>
T row_max(const T* __restrict row) {
  constexpr int64_t L = 16;
  T part[L];
  std::fill(part, part + L, kNegInf<T>);
  for (int64_t c = 0; c < kCols; c += L) {
#pragma omp simd
    for (int64_t l = 0; l < L; ++l) part[l] = part[l] < row[c + l] ? row[c + l] : part[l];
  }
  T top = part[0];
  for (int64_t l = 1; l < L; ++l) top = top < part[l] ? part[l] : top;
  return top;
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

// Per-thread buffers of the forward: a tile's scores, and per row the running max, sum and
// unnormalized output.
template <class T>
struct ForwardScratch {
  std::vector<T> s, m, l, acc, keep;
  explicit ForwardScratch(const AttentionProblem& p)
      : s(kRows * kCols), m(kRows), l(kRows), acc(kRows * p.dv), keep(kCols) {}
};

// The online-softmax step of query row r (query i) against one scored key tile: rescales what
// the row held by exp(m_old - m_new) and turns its scores into the weights exp(s - m_new) (zero
// where masked; dropped ones zero too), which forward_tile then multiplies with the v tile.
template <class T>
void forward_row(const AttentionProblem& p, const Head<T>& hd, int64_t i, int64_t r, int64_t j0,
                 int64_t cols, ForwardScratch<T>& w) {
  T* __restrict row = w.s.data() + r * kCols;
  const int64_t limit = scale_and_mask_row(p, hd, i, j0, cols, row);
  const T top = row_max(row);
  if (limit <= 0 || top == kNegInf<T>) {  // no key of this tile for this row
    std::fill(row, row + kCols, T(0));
    return;
  }
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
}

// Queries [i0, i0 + rows) of one head against every key they may see; writes their rows of out
// and lse (both at the head).
template <class T>
void forward_tile(const AttentionProblem& p, const Head<T>& hd, const T* kt, int64_t i0,
                  int64_t rows, T* out, T* lse, ForwardScratch<T>& w) {
  std::fill(w.m.begin(), w.m.begin() + rows, kNegInf<T>);
  std::fill(w.l.begin(), w.l.begin() + rows, T(0));
  std::fill(w.acc.begin(), w.acc.begin() + rows * p.dv, T(0));
  // The last row of the tile sees the most keys; tiles past it are skipped whole.
  const int64_t end = visible_end(p, i0 + rows - 1);
  for (int64_t j0 = 0; j0 < end; j0 += kCols) {
    const int64_t cols = std::min(kCols, end - j0);
    if (rows >= kFewRows) {
      std::fill(w.s.begin(), w.s.begin() + rows * kCols, T(0));
      tile_gemm(rows, kCols, p.d, hd.q + i0 * hd.qs, hd.qs, kt + j0 * p.d, kCols, w.s.data(),
                kCols);
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        T* row = w.s.data() + r * kCols;
        const T* qr = hd.q + (i0 + r) * hd.qs;
        for (int64_t c = 0; c < cols; ++c) row[c] = dot(qr, hd.k + (j0 + c) * hd.ks, p.d);
      }
    }
    for (int64_t r = 0; r < rows; ++r) forward_row(p, hd, i0 + r, r, j0, cols, w);
    // acc (rows x dv) += weights (rows x cols) . v rows [j0, j0 + cols).
    tile_gemm(rows, p.dv, cols, w.s.data(), kCols, hd.v + j0 * hd.vs, hd.vs, w.acc.data(), p.dv);
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
  const bool parallel = attention_macs(p) >= kGrainAttentionMacs;
  // Every key tile transposed once, (head, tile, d, kCols): as many values as k, where
  // transposing per query tile cost half as much as the score products themselves.
  const int64_t key_tiles = (p.tk + kCols - 1) / kCols, head_kt = key_tiles * p.d * kCols;
  std::vector<T> kt(p.tq >= kFewRows ? static_cast<size_t>(heads * head_kt) : 0);
  if (!kt.empty()) {
    parallel_for(heads, parallel, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const Head<T> hd = head_at(p, bh, q, k, v);
        for (int64_t j0 = 0; j0 < p.tk; j0 += kCols) {
          transpose_tile(hd.k, hd.ks, j0, std::min(kCols, p.tk - j0), p.d,
                         kt.data() + bh * head_kt + j0 * p.d);
        }
      }
    });
  }
  parallel_for(heads * tiles, parallel, [&](int64_t begin, int64_t end) {
    ForwardScratch<T> w(p);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bh = task / tiles, i0 = (task % tiles) * kRows;
      forward_tile(p, head_at(p, bh, q, k, v), kt.empty() ? nullptr : kt.data() + bh * head_kt,
                   i0, std::min(kRows, p.tq - i0), out + bh * p.tq * p.dv, lse + bh * p.tq, w);
    }
  });
}

namespace {

// Per-thread buffers of the backward: the transposed k and v tiles; per query tile its scores
// (then weights), dP (then dS), and both transposed; the key tile's dk and dv sums.
template <class T>
struct BackwardScratch {
  std::vector<T> kt, vt, s, ds, pt, dst, keep, dk, dv, rowdot;
  explicit BackwardScratch(const AttentionProblem& p)
      : kt(p.d * kCols), vt(p.dv * kCols), s(kRows * kCols), ds(kRows * kCols),
        pt(kCols * kRows), dst(kCols * kRows), keep(kCols), dk(kCols * p.d), dv(kCols * p.dv),
        rowdot(p.tq) {}
};

// Row r (query i) of a tile pair: the score row in w.s becomes the dropped weights P * keep, and
// the dP row in w.ds (the gradient of the dropped weights, dO V^T) becomes
// dS * scale = P * (dP * keep - rowsum(dO * O)) * scale.
template <class T>
void backward_row(const AttentionProblem& p, const Head<T>& hd, int64_t i, int64_t r, int64_t j0,
                  int64_t cols, const T* lse, BackwardScratch<T>& w) {
  T* __restrict pr = w.s.data() + r * kCols;
  T* __restrict dsr = w.ds.data() + r * kCols;
  const int64_t limit = scale_and_mask_row(p, hd, i, j0, cols, pr);
  if (limit <= 0 || lse[i] == std::numeric_limits<T>::infinity()) {
    std::fill(pr, pr + kCols, T(0));
    std::fill(dsr, dsr + kCols, T(0));
    return;
  }
  const T shift = lse[i], rowdot = w.rowdot[i], scale = static_cast<T>(p.scale);
  if (p.dropout > 0) {
    std::fill(w.keep.begin(), w.keep.end(), T(0));
    dropout_row(p, hd, i, j0, limit, w.keep.data());
    const T* __restrict keep = w.keep.data();
#pragma omp simd
    for (int64_t c = 0; c < kCols; ++c) {
      const T pc = fast_exp_nonpositive(pr[c] - shift);
      dsr[c] = pc * (dsr[c] * keep[c] - rowdot) * scale;
      pr[c] = pc * keep[c];
    }
    return;
  }
#pragma omp simd
  for (int64_t c = 0; c < kCols; ++c) {
    const T pc = fast_exp_nonpositive(pr[c] - shift);
    dsr[c] = pc * (dsr[c] - rowdot) * scale;
    pr[c] = pc;
  }
}

// Queries [i0, i0 + rows) against the key tile at j0 (transposed in w.kt, w.vt): adds to the
// tile's dk and dv sums (w.dk, w.dv) and to dq's rows.
template <class T>
void backward_tile(const AttentionProblem& p, const Head<T>& hd, int64_t i0, int64_t rows,
                   int64_t j0, int64_t cols, const T* lse, const T* go, T* dq,
                   BackwardScratch<T>& w) {
  const T* q = hd.q + i0 * hd.qs;
  const T* gi = go + i0 * p.dv;
  std::fill(w.s.begin(), w.s.end(), T(0));
  std::fill(w.ds.begin(), w.ds.end(), T(0));
  tile_gemm(rows, kCols, p.d, q, hd.qs, w.kt.data(), kCols, w.s.data(), kCols);    // S = Q K^T
  tile_gemm(rows, kCols, p.dv, gi, p.dv, w.vt.data(), kCols, w.ds.data(), kCols);  // dO V^T
  for (int64_t r = 0; r < rows; ++r) backward_row(p, hd, i0 + r, r, j0, cols, lse, w);
  transpose_rows(w.s.data(), rows, cols, w.pt.data());
  transpose_rows(w.ds.data(), rows, cols, w.dst.data());
  tile_gemm(cols, p.dv, rows, w.pt.data(), kRows, gi, p.dv, w.dv.data(), p.dv);  // dV += P^T dO
  tile_gemm(cols, p.d, rows, w.dst.data(), kRows, q, hd.qs, w.dk.data(), p.d);   // dK += dS^T Q
  tile_gemm(rows, p.d, cols, w.ds.data(), kCols, hd.k + j0 * hd.ks, hd.ks, dq + i0 * p.d,
            p.d);                                                                  // dQ += dS K
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
    for (int64_t i0 = first; i0 < p.tq; i0 += kRows) {
      backward_tile(p, hd, i0, std::min(kRows, p.tq - i0), j0, cols, lse, go, dq, w);
    }
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
