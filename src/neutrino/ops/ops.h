// The differentiable ops. Each checks its arguments (errors name the op and the shapes), runs a
// kernel from backend/kernels.h, and records its backward. Each lives in its family's file:
// elementwise.cpp (arithmetic, math, comparisons, where), activation.cpp (relu .. gelu),
// reduce.cpp (sums, max, softmax, cumsum), linalg.cpp (matmul, linear), conv.cpp (conv2d and the
// fused first layer), pool.cpp, shape.cpp (views, indexing, pieces, arange), nn_ops.cpp
// (normalization, dropout, the fused loss), recurrent.cpp (the RNN scan), attention.cpp
// (scaled dot-product attention, rotary embeddings). Floating ops accept float32 and float64
// (float64 is for gradient checks); index tensors are int64, masks bool.
#pragma once

#include <string>
#include <vector>

#include "neutrino/backend/conv_geometry.h"
#include "neutrino/backend/rnn_cell.h"
#include "neutrino/tensor/tensor.h"

namespace neutrino {

// ---- copies and conversions (differentiable) ------------------------------------------------
Tensor contiguous(const Tensor& x);         // x itself when already contiguous
Tensor clone(const Tensor& x);              // always a copy
Tensor cast(const Tensor& x, DType dtype);  // any dtype; the gradient flows between floating ones

// ---- elementwise, NumPy broadcasting -------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient goes to a where a >= b
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor rsub(double a, const Tensor& b);  // a - b
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);  // not differentiable (zero gradient)
Tensor clamp(const Tensor& x, double min, double max);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor gelu(const Tensor& x, const std::string& approximate = "none");  // "none" or "tanh"
Tensor softplus(const Tensor& x);                                        // log(1 + exp(x)), stable
Tensor erf(const Tensor& x);   // the error function, as torch.erf
Tensor silu(const Tensor& x);  // x * sigmoid(x) (swish)

// Comparisons, broadcasting, of two float32, float64 or int64 tensors of one dtype; they return
// bool tensors (no gradient).
Tensor greater(const Tensor& a, const Tensor& b);
Tensor greater_equal(const Tensor& a, const Tensor& b);
Tensor equal(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
Tensor less_equal(const Tensor& a, const Tensor& b);
Tensor not_equal(const Tensor& a, const Tensor& b);

// cond ? a : b, broadcasting all three; cond is bool.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- reductions (dims empty: over all dims) ------------------------------------------------
Tensor sum(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor max(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // int64, no gradient
// Sums broadcast dimensions away so the result has `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);
// Inclusive prefix sums along dim: y[.., i, ..] = sum_{j <= i} x[.., j, ..] (torch.cumsum).
Tensor cumsum(const Tensor& x, int64_t dim);

// ---- linear algebra ------------------------------------------------------------------------
// (..., n, k) @ (..., k, m) with broadcast batch dims; 2-D @ 2-D is the plain product.
Tensor matmul(const Tensor& a, const Tensor& b);
// An activation applied inside the op that produces a tensor, while its data is still in cache.
enum class Epilogue { kNone, kRelu };
// activation(x @ weight^T + bias), weight in PyTorch's (out, in) layout; bias may be undefined.
// The bias is the GEMM's starting value and the activation runs in place, so Dense costs one pass
// over its output instead of three. A bfloat16 x (mixed precision) takes float32 weight and bias,
// is read by the bf16 matmul as it is, and gives a float32 result (its gradient comes back bf16).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias,
              Epilogue epilogue = Epilogue::kNone);

// ---- shape and indexing (views where possible) ---------------------------------------------
Tensor reshape(const Tensor& x, Shape shape);  // one dim may be -1
Tensor flatten(const Tensor& x, int64_t start_dim = 1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast view, stride 0
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor embedding(const Tensor& weight, const Tensor& indices);  // weight[indices]
// Adds `source` into zeros(shape) at `index` along dim (the backward of index_select).
Tensor index_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& source);
// Views of consecutive pieces along dim, as torch.split: of split_size each (the last may be
// smaller), or of the given sizes (which must add up to the dim). Each piece is differentiable.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
// `chunks` pieces of ceil(size / chunks) along dim (fewer when they run out), as torch.chunk.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
// Tensors of one shape joined along a new dim (dim may be -1 .. rank), as torch.stack.
Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0);
// Zeroes x[..., i, j] where j - i > k (tril: keeps the lower triangle and k diagonals above it)
// or where j - i < k (triu), over the last two dims; float, int64 or bool.
Tensor tril(const Tensor& x, int64_t k = 0);
Tensor triu(const Tensor& x, int64_t k = 0);

// ---- creation -------------------------------------------------------------------------------
// start, start + step, ... up to end (excluded), as torch.arange: float32, float64 or int64 (whose
// bounds and step must be whole numbers). No gradient.
Tensor arange(double start, double end, double step = 1, DType dtype = DType::kFloat32);

// ---- neural-network ops ---------------------------------------------------------------------
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor dropout(const Tensor& x, double p, bool training);
// mean_i -log softmax(logits_i)[labels_i]: logits (N, C), labels int64 (N). One op, so training
// never builds the one-hot matrix or the log-softmax tensor; its gradient is
// (softmax(logits) - one_hot(labels)) / N.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels);

// Conv2dParams and Pool2dParams (stride, padding per side, dilation, groups; pool window) are in
// backend/conv_geometry.h, with the output-size rule that ops and layers share.
// x (N, C, H, W), weight (O, C/groups, KH, KW), bias (O) or undefined.
// float32 runs on oneDNN's convolution primitives (bf16 inside under PrecisionGuard); float64 on
// im2col + GEMM, the reference the tests compare against.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p,
              Epilogue epilogue = Epilogue::kNone);

Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
// max_pool2d(conv2d(x, weight, bias, conv, kRelu), pool), in one pass when nothing needs a
// gradient and the shapes allow it (a 3x3 "same" convolution of up to 4 input channels and a 2x2
// pool: a first layer), else as those two ops; with a graph to record, as
// relu(max_pool2d(conv2d(...))), which is the same function with a cheaper backward.
Tensor conv2d_relu_max_pool2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                              const Conv2dParams& conv, const Pool2dParams& pool);

// Normalizes over every dim but 1 (channels). In training, uses batch statistics and updates the
// running ones in place (running = (1 - momentum) * running + momentum * batch, unbiased variance,
// as PyTorch); in eval, uses the running statistics. weight/bias may be undefined.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps);
// Normalizes over the last normalized_shape.size() dims.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps);

// Normalizes over the last dim by its root mean square: y = x / sqrt(mean(x^2) + eps) * weight
// (weight of the last dim's size, or undefined), as LLaMA's RMSNorm.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps);

// ---- attention (ops/attention.cpp) ---------------------------------------------------------
struct AttentionOptions {
  // Query i attends key j only where j <= i + (Tk - Tq): aligned to the last key, so a query
  // block that continues a KV cache sees every earlier key (equal to torch's tril when Tq == Tk).
  bool causal = false;
  // Dropout on the attention weights, in training (the caller passes training && p).
  double dropout = 0.0;
  // Scores are (q . k) * scale; 0 means 1 / sqrt(head dim).
  double scale = 0.0;
};
// softmax(q k^T * scale + mask) v over the key axis: q (B, H, Tq, D), k (B, H, Tk, D),
// v (B, H, Tk, Dv) -> (B, H, Tq, Dv). mask: undefined, or bool broadcastable to (B, H, Tq, Tk)
// (true: attend). One fused op that never holds the (Tq x Tk) weights: tiles of queries against
// tiles of keys with an online softmax (FlashAttention), the backward recomputing the weights
// tile by tile from the saved row log-sum-exp, so memory grows linearly with T. Rows with no key
// to attend give zeros. Differentiable in q, k and v.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask = Tensor(),
                                    const AttentionOptions& options = {});
// The same function from matmul, masked_fill, softmax and dropout (the reference the fused op is
// tested against; it materializes the weights).
Tensor scaled_dot_product_attention_composite(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const Tensor& mask = Tensor(),
                                              const AttentionOptions& options = {});
// Rotary position embedding (RoPE, the rotate-half form of GPT-NeoX and LLaMA): x (B, H, T, D),
// D even; the pair (x[..., i], x[..., i + D/2]) at position p = position_offset + t is rotated
// by the angle p * base^(-2i/D).
Tensor rotary_embedding(const Tensor& x, int64_t position_offset = 0, double base = 10000.0);

// ---- recurrent (the cells and their math: backend/rnn_cell.h) ----------------------------
// One layer and direction of a recurrent network over x (N, T, I), with PyTorch's weights:
// w_ih (G*H, I), w_hh (G*H, H), b_ih and b_hh (G*H) or undefined; h0 (N, S*H: h, then an
// LSTM's c) or undefined for zeros; mask bool (N, T) or undefined: where false the state carries
// over unchanged. `reverse` runs from the last step to the first. Returns (N, T, S*H): the state
// after each step at its own time index (h in [..., :H], an LSTM's c in [..., H:]), so the final
// state is at t = T-1 (t = 0 when reversed). Differentiable in everything but the mask (first
// order only).
Tensor rnn(RnnCell cell, const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
           const Tensor& b_ih, const Tensor& b_hh, const Tensor& mask = Tensor(),
           bool reverse = false);

// Operators, for readable math.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
inline Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }
inline Tensor operator-(double a, const Tensor& b) { return rsub(a, b); }

}  // namespace neutrino
