// The CPU backend: every numeric loop the ops run. Ops check shapes and record the graph; kernels
// only compute, on raw pointers, and know nothing of autograd. Each kernel here is the plain
// reference version; faster ones (oneDNN, BLAS, SIMD) may replace a kernel's body, and the reference
// stays available in kernels::reference for tests.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "neutrino/backend/conv_geometry.h"
#include "neutrino/backend/rnn_cell.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino {
class Generator;  // core/random.h
}

namespace neutrino::kernels {

// Calls f(offsets) for every index of `shape`, where offsets[k] = sum(index * strides[k]).
template <size_t N, class F>
void strided_for_each(const Shape& shape, const std::array<const int64_t*, N>& strides, F&& f) {
  const size_t rank = shape.size();
  for (int64_t extent : shape) {
    if (extent == 0) return;
  }
  std::array<int64_t, N> offsets{};
  if (rank == 0) {
    f(offsets);
    return;
  }
  std::vector<int64_t> index(rank, 0);
  const int64_t inner = shape[rank - 1];
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = strides[k][rank - 1];
  while (true) {
    std::array<int64_t, N> at = offsets;
    for (int64_t i = 0; i < inner; ++i) {
      f(at);
      for (size_t k = 0; k < N; ++k) at[k] += inner_stride[k];
    }
    int64_t d = static_cast<int64_t>(rank) - 2;
    for (; d >= 0; --d) {
      for (size_t k = 0; k < N; ++k) offsets[k] += strides[k][d];
      if (++index[d] < shape[d]) break;
      for (size_t k = 0; k < N; ++k) offsets[k] -= strides[k][d] * shape[d];
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

// Elementwise functions of one contiguous input; alpha/beta are op parameters (see each comment).
enum class Unary {
  kNeg, kExp, kLog, kSqrt, kAbs, kSign,
  kPow,         // x^alpha
  kClamp,       // min(max(x, alpha), beta)
  kRelu,
  kLeakyRelu,   // x > 0 ? x : alpha * x
  kSigmoid, kTanh, kSoftplus,
  kErf,         // 2/sqrt(pi) * integral_0^x exp(-t^2) dt
  kSilu,        // x * sigmoid(x)
  kGeluErf,     // x * Phi(x)
  kGeluTanh,    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  kGeluErfGrad, kGeluTanhGrad,  // derivatives of the two
  kStep,        // x > alpha ? 1 : beta (masks for relu-like backwards)
  kInRange,     // alpha <= x <= beta ? 1 : 0 (clamp's backward)
  kAddScalar,   // x + alpha
  kMulScalar,   // x * alpha
  kRsubScalar,  // alpha - x
};
template <class T>
void unary(Unary op, const T* x, T* y, int64_t n, double alpha = 0, double beta = 0);
// dx = g * d gelu(x) / dx over n contiguous values (GELU's backward in one pass); exact: the erf
// form, else the tanh approximation. float uses a vectorized erf, double std::erf.
template <class T>
void gelu_backward(bool exact, const T* x, const T* g, T* dx, int64_t n);

enum class Binary { kAdd, kSub, kMul, kDiv, kMax };
// out (contiguous, `shape`) = a op b, with a and b read through broadcast strides.
template <class T>
void binary(Binary op, const T* a, const int64_t* a_strides, const T* b, const int64_t* b_strides,
            T* out, const Shape& shape);

enum class Compare { kGreater, kGreaterEqual, kEqual, kLess, kLessEqual, kNotEqual };
// out (contiguous bool, `shape`) = a op b, with a and b read through broadcast strides; for
// float, double and int64 (NaN compares as IEEE says: unequal to everything).
template <class T>
void compare(Compare op, const T* a, const int64_t* a_strides, const T* b, const int64_t* b_strides,
             bool* out, const Shape& shape);

// out (contiguous, `shape`) = cond ? a : b, all three read through broadcast strides; float and
// double.
template <class T>
void where(const bool* cond, const int64_t* cond_strides, const T* a, const int64_t* a_strides,
           const T* b, const int64_t* b_strides, T* out, const Shape& shape);

// float32 <-> bfloat16 of n contiguous values (round to nearest even; NaN stays NaN), spread over
// the cores for large n.
void convert(const float* from, bfloat16* to, int64_t n);
void convert(const bfloat16* from, float* to, int64_t n);
// n contiguous values of any dtype as any other: float32 <-> bfloat16 through convert(), every
// other pair by static_cast (bool -> 0 or 1, float -> int64 truncating).
void cast(const void* from, DType from_dtype, void* to, DType to_dtype, int64_t n);

// Copies a strided view into contiguous memory.
template <class T>
void copy_strided(const T* src, const Shape& shape, const int64_t* strides, T* dst);
// Copies a strided view into another strided view of the same shape (a slice of a larger
// tensor). Both copies take every dtype.
template <class T>
void copy_strided(const T* src, const Shape& shape, const int64_t* src_strides, T* dst,
                  const int64_t* dst_strides);

// out[c] = sum over rows of x[row, c], for a (rows, c) row-major matrix (a channels-last
// tensor's per-channel sums: the bias gradient of a convolution), spread over the cores.
void channel_sums(const float* x, int64_t rows, int64_t c, float* out);

// Reduction of a contiguous tensor of `shape` into `out`, which has the keepdim shape; reduced
// dims are those where keep_shape[d] == 1 and shape[d] != 1 (or any dim of size 1).
template <class T>
void reduce_sum(const T* x, const Shape& shape, const Shape& keep_shape, T* out);
template <class T>
void reduce_max(const T* x, const Shape& shape, const Shape& keep_shape, T* out);
// Index of the maximum along the middle dim of a contiguous (outer, n, inner) tensor.
template <class T>
void argmax(const T* x, int64_t outer, int64_t n, int64_t inner, int64_t* out);

// C (m, n) = A (m, k) @ B (k, n) (+ C if accumulate). A and B are read through row/col strides,
// so transposed operands need no copy. float runs on oneDNN's sgemm (vectorized, both cores)
// when the operands fit its layout; everything else on the reference loop.
void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row, int64_t a_col,
          const float* b, int64_t b_row, int64_t b_col, float* c, bool accumulate);
void gemm(int64_t m, int64_t n, int64_t k, const double* a, int64_t a_row, int64_t a_col,
          const double* b, int64_t b_row, int64_t b_col, double* c, bool accumulate);

// y (m, n) = act(x (m, k) @ w^T + bias), w (n, k) row-major as PyTorch stores Linear weights,
// bias (n) or null; all contiguous. The one entry for Dense: it picks the kernel. From 32 rows
// and 4096 weights, oneDNN's matmul with the bias and relu fused (bf16 inside under bf16 compute
// precision); 1-4 rows in float32 precision, dot products against four weight rows at a time
// split over the cores (linear_few_rows); anything else (and float64), the GEMM with the bias as
// its starting value and relu in place.
void linear(int64_t m, int64_t n, int64_t k, const float* x, const float* w, const float* bias,
            float* y, bool relu);
void linear(int64_t m, int64_t n, int64_t k, const double* x, const double* w, const double* bias,
            double* y, bool relu);
// A bfloat16 x (mixed precision) with float32 weights and a float32 y: computed in bf16 by
// oneDNN where the float32 entry would use it and the CPU has bf16, else widened to float32 first.
void linear(int64_t m, int64_t n, int64_t k, const bfloat16* x, const float* w, const float* bias,
            float* y, bool relu);

// The kernels behind linear(), for tests: oneDNN's matmul (x float32 or bfloat16), and the
// few-rows dot products.
void linear_forward(int64_t m, int64_t n, int64_t k, const float* x, const float* w,
                    const float* bias, float* y, bool relu);
void linear_forward(int64_t m, int64_t n, int64_t k, const bfloat16* x, const float* w,
                    const float* bias, float* y, bool relu);
void linear_few_rows(int64_t m, int64_t n, int64_t k, const float* x, const float* w,
                     const float* bias, float* y, bool relu);

namespace reference {
// The plain triple loop, kept for tests of the fast path.
template <class T>
void gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_row, int64_t a_col, const T* b,
          int64_t b_row, int64_t b_col, T* c, bool accumulate);
}  // namespace reference

// Inclusive prefix sums along the middle dim of a contiguous (outer, n, inner) tensor, from the
// front, or from the back when `reverse` (cumsum's backward).
template <class T>
void cumsum(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool reverse);

// y = x over `batch` contiguous (rows, cols) matrices, with x[i, j] zeroed where j - i > k
// (`lower`: tril) or where j - i < k (triu). For float, double, int64 and bool.
template <class T>
void triangle(const T* x, T* y, int64_t batch, int64_t rows, int64_t cols, int64_t k, bool lower);

// out[i] = start + i * step for i < n, computed in double (int64: in int64) and then cast, as
// PyTorch does. For float, double and int64.
template <class T>
void arange(T* out, int64_t n, double start, double step);

// Softmax or log-softmax along the middle dim of a contiguous (outer, n, inner) tensor.
template <class T>
void softmax(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);

// Convolution by im2col: one image of group `group` of a geometry, (C/groups, H, W) ->
// columns (C/groups * KH * KW, OH * OW). `ld` is the row stride of the columns matrix (OH*OW for
// one image alone; larger when the columns of a whole batch sit side by side).
template <class T>
void im2col(const T* image, const ConvGeometry& g, T* columns, int64_t ld);
// The adjoint: adds columns back into a zeroed image.
template <class T>
void col2im(const T* columns, const ConvGeometry& g, T* image, int64_t ld);

// Memory of a convolution's buffers: the x-shaped ones (x, gx) and the y-shaped ones (y, gy) are
// float32, bfloat16 or float64, NCHW or channels-last (NHWC) as the flags say. Weights, bias and
// their gradients are float32 (float64 for float64 buffers).
struct ConvLayout {
  DType x_dtype = DType::kFloat32, y_dtype = DType::kFloat32;
  bool x_nhwc = false, y_nhwc = false;
};
// Whether a convolution of `dtype` activations writes its output channels-last (so that conv ->
// pool -> conv needs no reorder): float32 and bfloat16 do, float64 (the reference) does not.
bool conv2d_prefers_channels_last(DType dtype);
// The three convolution entries, tensors in PyTorch's layouts: x (N, C, H, W),
// w (O, C/groups, KH, KW), y (N, O, OH, OW). Each owns its dispatch: float32 and bfloat16 run on
// oneDNN's primitives (bf16 arithmetic with float32 accumulation when either buffer is bfloat16
// or the thread's compute precision is bf16, small problems on the calling thread alone); float64
// runs the reference, im2col + one GEMM per group over the whole batch (NCHW only). bias / gb
// may be null; `relu` applies max(y, 0) in the same pass; `training` keeps what a backward needs.
void conv2d_forward(const ConvGeometry& g, const ConvLayout& l, const void* x, const void* w,
                    const void* bias, void* y, bool relu, bool training);
void conv2d_backward_data(const ConvGeometry& g, const ConvLayout& l, const void* gy,
                          const void* w, void* gx);
// gw (and gb when not null) are overwritten with the gradients summed over the batch.
void conv2d_backward_weights(const ConvGeometry& g, const ConvLayout& l, const void* x,
                             const void* gy, void* gw, void* gb);

// relu's backward over n values of one layout: grad_x = grad_y * [y > 0] (backend/relu.h).
template <class T>
void relu_backward(const T* grad_y, const T* y, T* grad_x, int64_t n);

// Pooling over the g.planes() contiguous (H, W) planes of an NCHW tensor. Max pooling records the argmax (flat h*w index, -1 if the window
// is all padding) for the backward.
template <class T>
void max_pool2d(const T* x, const ConvGeometry& g, T* y, int64_t* indices);
template <class T>
void max_pool2d_backward(const T* grad_y, const int64_t* indices, const ConvGeometry& g, T* grad_x);
// The common 2x2, stride-2, unpadded max pool (is_pool2x2), without indices: its backward finds
// each window's winner again from x and y. Same results as max_pool2d / max_pool2d_backward.
bool is_pool2x2(const ConvGeometry& g);
template <class T>
void max_pool2x2(const T* x, const ConvGeometry& g, T* y);
template <class T>
void max_pool2x2_backward(const T* x, const T* y, const T* grad_y, const ConvGeometry& g,
                          T* grad_x);
// Inference of maxpool2x2(relu(conv3x3(x, stride 1, padding 1) + bias)) in one pass, for first
// layers: x (N, C, H, W) with C <= 4 and H, W even; weight (O, C, 3, 3) with O a multiple of 16
// up to 64 (conv3x3_relu_max_pool2x2_supported); bias (O) or null; y channels-last
// (N, H/2, W/2, O).
bool conv3x3_relu_max_pool2x2_supported(int64_t in_c, int64_t out_c);
void conv3x3_relu_max_pool2x2(const float* x, int64_t n, int64_t c, int64_t h, int64_t w,
                              const float* weight, const float* bias, int64_t out_c, float* y);
// The same 2x2 pool over channels-last (N, H, W, C) memory: every step is a vector over C. Also
// for bfloat16, compared as floats (the winner is copied exactly). With `relu`, y = max(pool, 0)
// in the same pass, and the backward (given that y) passes gradient only where y > 0.
template <class T>
void max_pool2x2_nhwc(const T* x, int64_t n, int64_t h, int64_t w, int64_t c, T* y,
                      bool relu = false);
template <class T>
void max_pool2x2_nhwc_backward(const T* x, const T* y, const T* grad_y, int64_t n, int64_t h,
                               int64_t w, int64_t c, T* grad_x, bool relu = false);
// The bfloat16 versions work on the raw bits, so that they vectorize.
template <>
void max_pool2x2_nhwc<bfloat16>(const bfloat16* x, int64_t n, int64_t h, int64_t w, int64_t c,
                                bfloat16* y, bool relu);
template <>
void max_pool2x2_nhwc_backward<bfloat16>(const bfloat16* x, const bfloat16* y,
                                         const bfloat16* grad_y, int64_t n, int64_t h, int64_t w,
                                         int64_t c, bfloat16* grad_x, bool relu);
// y = max(x, 0) and grad_x = grad_y * [y > 0] over n bfloat16 values (bf16_kernels.cpp).
void relu(const bfloat16* x, bfloat16* y, int64_t n);
template <>
void relu_backward<bfloat16>(const bfloat16* grad_y, const bfloat16* y, bfloat16* grad_x,
                             int64_t n);
template <class T>
void avg_pool2d(const T* x, const ConvGeometry& g, bool count_include_pad, T* y);
template <class T>
void avg_pool2d_backward(const T* grad_y, const ConvGeometry& g, bool count_include_pad, T* grad_x);

// ---- recurrent scans (rnn_kernels.cpp), float and double; cells and sizes in rnn_cell.h ----
// N = batch, T = steps, H = hidden, G = rnn_gates, S = rnn_state_width, W = rnn_saved_width.
// Forward over time. xw (N, T, G*H): W_ih x_t + b_ih for every step (the op's one GEMM);
// w_hh (G*H, H); b_hh (G*H) or null; h0 (N, S*H: h, then an LSTM's c) or null for zeros; mask
// (N, T) or null: where false the step keeps the state it had. Writes out (N, T, S*H), each
// step's state, and, when not null, saved (T, N, W*H) for the backward. Per step: one GEMM for
// W_hh h and one fused pass over the gates. float's gates use a vectorized exp; double's use
// std::exp (the reference that gradient checks and the fast-vs-reference tests read).
template <class T>
void rnn_forward(const RnnScan& s, const T* xw, const T* w_hh, const T* b_hh, const T* h0,
                 const bool* mask, T* out, T* saved);
// Backward through time from grad_out (N, T, S*H), reusing out and saved. Writes dxw (N, T, G*H),
// the gradient of xw; dhw (N, T, G*H), that of W_hh h + b_hh at each step (it differs from dxw
// only for a GRU; pass null for the other cells, whose dhw is dxw); hprev (N, T, H), the h each
// step read (for dW_hh = dhw^T hprev); dh0 (N, S*H). One GEMM per step carries dh back.
template <class T>
void rnn_backward(const RnnScan& s, const T* grad_out, const T* out, const T* saved, const T* w_hh,
                  const T* h0, const bool* mask, T* dxw, T* dhw, T* hprev, T* dh0);

// ---- attention (attention_kernels.cpp), float and double -----------------------------------
// One scaled dot-product attention: q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv), each
// read through its (batch, head, row) strides with the last dim contiguous, so that k and v may be
// slices of a longer KV cache; out, lse and every gradient are contiguous.
struct AttentionProblem {
  int64_t batch = 0, heads = 0, tq = 0, tk = 0, d = 0, dv = 0;
  std::array<int64_t, 3> q_strides{}, k_strides{}, v_strides{};
  double scale = 1;
  bool causal = false;         // query i sees key j only where j <= i + tk - tq
  const bool* mask = nullptr;  // or: query i sees key j only where mask at (b, h, i, j) is true,
  std::array<int64_t, 4> mask_strides{};  // read through these strides (0 on broadcast dims)
  double dropout = 0;          // probability of dropping each weight (after the softmax)
  uint64_t seed = 0;           // of the dropout decisions (attention_dropout_keep)
};

// The dropout decision of weight (b, h, i, j), a pure function of the seed and the weight's
// flat index ((b * H + h) * Tq + i) * Tk + j, so that the backward (and the composite op, through
// attention_dropout_mask) regenerate the forward's mask without storing it: the splitmix64
// output at that counter, kept when its top 53 bits are at least p * 2^53.
inline uint64_t attention_dropout_threshold(double p) {
  return static_cast<uint64_t>(p * 9007199254740992.0);
}
inline bool attention_dropout_keep(uint64_t seed, uint64_t index, uint64_t threshold) {
  uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return ((z ^ (z >> 31)) >> 11) >= threshold;
}
// mask (B, H, Tq, Tk) = 1 / (1 - p) where attention_dropout_keep, else 0 (the composite's mask).
template <class T>
void attention_dropout_mask(const AttentionProblem& p, T* mask);

// FlashAttention-2: for each (b, h) and tile of queries, a loop over tiles of keys with an online
// softmax (running max and sum), so that no (Tq x Tk) buffer exists; fully masked causal tiles
// are skipped. Writes out (B, H, Tq, Dv) and lse (B, H, Tq), each row's log-sum-exp of its scaled
// scores (+inf for a row with no key to attend, whose output is zeros). float uses a vectorized
// exp, double std::exp (the gradient checks' precision).
template <class T>
void attention_forward(const AttentionProblem& p, const T* q, const T* k, const T* v, T* out,
                       T* lse);
// The backward from the saved out and lse, recomputing the weights tile by tile: per (b, h) and
// key tile, dV += P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)), dQ += dS K * scale,
// dK += dS^T Q * scale (with dropout's mask on P and dP). dq, dk, dv are written whole.
template <class T>
void attention_backward(const AttentionProblem& p, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const T* grad_out, T* dq, T* dk, T* dv);

// Rotary position embedding (rotate-half) of `planes` contiguous (T, D) planes, D even: the pair
// (x[t, i], x[t, i + D/2]) rotated by the angle (offset + t) * base^(-2i/D), or by its negative
// when `inverse` (the backward).
template <class T>
void rotary_embedding(const T* x, T* y, int64_t planes, int64_t steps, int64_t d, int64_t offset,
                      double base, bool inverse);

// ---- normalization over the last dim (norm_kernels.cpp), float and double ------------------
// rows contiguous rows of n values. weight and bias (n) may be null. layer_norm saves each row's
// mean and 1 / sqrt(var + eps), rms_norm its 1 / sqrt(mean(x^2) + eps), for the backwards, which
// write dx (rows, n) and, when not null, dweight and dbias (n) summed over the rows in row order
// (the same at any thread count).
template <class T>
void layer_norm_forward(const T* x, const T* weight, const T* bias, int64_t rows, int64_t n,
                        double eps, T* y, T* mean, T* rstd);
template <class T>
void layer_norm_backward(const T* grad_y, const T* x, const T* weight, const T* mean,
                         const T* rstd, int64_t rows, int64_t n, T* dx, T* dweight, T* dbias);
template <class T>
void rms_norm_forward(const T* x, const T* weight, int64_t rows, int64_t n, double eps, T* y,
                      T* rstd);
template <class T>
void rms_norm_backward(const T* grad_y, const T* x, const T* weight, const T* rstd, int64_t rows,
                       int64_t n, T* dx, T* dweight);

// ---- indexing (index_kernels.cpp) ----
// Position of the first of n values outside [0, limit), or n when there is none: the bounds
// check of indices and labels, whose error the op raises.
int64_t find_out_of_range(const int64_t* values, int64_t n, int64_t limit);
// out (outer, count, inner) = x (outer, n, inner) at rows index[0 .. count) of its middle dim,
// elements of `element_size` bytes (any dtype); large gathers are spread over the cores.
void index_select(const void* x, int64_t outer, int64_t n, int64_t inner, size_t element_size,
                  const int64_t* index, int64_t count, void* out);
// out (outer, n, inner) += source (outer, count, inner) at rows index[i] of the middle dim, for
// float and double. Repeated indices accumulate in order of i at any thread count (the threads
// split the outer and inner positions, never the index).
template <class T>
void index_add(const T* source, int64_t outer, int64_t count, const int64_t* index, int64_t n,
               int64_t inner, T* out);

// ---- losses and dropout (nn_kernels.cpp), float and double ----
// The mean over rows of logsumexp(z_i) - z_i[labels[i]] for contiguous (rows, classes) logits,
// summed in double in row order; labels in [0, classes), rows > 0.
template <class T>
double softmax_cross_entropy(const T* logits, const int64_t* labels, int64_t rows,
                             int64_t classes);
// out (rows, classes) = 1 at (i, labels[i]), 0 elsewhere (softmax_cross_entropy's backward).
template <class T>
void one_hot(const int64_t* labels, int64_t rows, int64_t classes, T* out);
// mask[i] = scale where the i-th uniform draw from `gen` is >= p, else 0: n draws in order on the
// calling thread, so a seed gives the same mask at any thread count.
template <class T>
void dropout_mask(T* mask, int64_t n, double p, double scale, Generator& gen);

// ---- optimizer updates (optimizer_kernels.cpp), over n contiguous values, float and double ----
// w *= factor (decoupled weight decay).
template <class T>
void scale_in_place(T* w, int64_t n, double factor);
// sum of x^2, accumulated in double in order (the global gradient norm).
template <class T>
double sum_of_squares(const T* x, int64_t n);
// b = momentum * b + g; w -= lr * (nesterov ? g + momentum * b : b); velocity is unused (may be
// null) when momentum is 0, and then w -= lr * g.
template <class T>
void sgd_step(T* w, const T* g, T* velocity, int64_t n, double lr, double momentum, bool nesterov);
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2 (vmax = max(vmax, v) for amsgrad, else null);
// w -= step_size * m / (sqrt(v or vmax) / bias2_sqrt + eps).
template <class T>
void adam_step(T* w, const T* g, T* m, T* v, T* vmax, int64_t n, double b1, double b2,
               double step_size, double bias2_sqrt, double eps);
// v = rho v + (1 - rho) g^2 (centered: avg = rho avg + (1 - rho) g, denominator v - avg^2);
// step = g / (sqrt(denominator) + eps); with momentum buf = momentum buf + step, w -= lr buf,
// else w -= lr step. avg and buf may be null.
template <class T>
void rmsprop_step(T* w, const T* g, T* v, T* avg, T* buf, int64_t n, double lr, double rho,
                  double momentum, double epsilon);

}  // namespace neutrino::kernels
