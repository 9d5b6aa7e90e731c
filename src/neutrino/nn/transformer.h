// Transformer layers for the Keras-style models (Sequential and the functional API), holding
// their weights under PyTorch's names and layouts so state dicts exchange with torch.nn:
//
//   MultiHeadAttention   nn.MultiheadAttention(E, H, batch_first=True): in_proj_weight (3E, E),
//                        in_proj_bias (3E), out_proj.weight (E, E), out_proj.bias (E)
//   RMSNorm              weight (E): x / sqrt(mean(x^2) + eps) * weight over the last axis
//   TransformerBlock     nn.TransformerEncoderLayer(E, H, F, dropout, activation="gelu",
//                        batch_first=True, norm_first=True): self_attn.<MultiHeadAttention>,
//                        linear1 (F, E), linear2 (E, F), norm1, norm2; SwiGLU adds linear_gate
//   TransformerEncoder   nn.TransformerEncoder(block, N, norm): layers.<i>.<block>, norm
//
// Inputs are (batch, steps, E); the per-sample input shape is (steps, E), E inferred from it.
// A Keras mask (bool (batch, steps), from Embedding(mask_zero)) masks the padded keys and passes
// through unchanged, so GlobalAveragePooling1D after a TransformerEncoder averages the real steps.
//
//   auto in = nn::Input({32}, "tokens");
//   auto h = nn::Embedding(1000, 64, {.mask_zero = true})(in);
//   h = nn::TransformerEncoder(2, 4, {.dim_feedforward = 128})(h);
//   auto y = nn::Dense(6, "softmax")(nn::GlobalAveragePooling1D()(h));
#pragma once

#include <memory>
#include <string>

#include "neutrino/nn/layers.h"

namespace neutrino::nn {

struct MultiHeadAttentionOptions {
  Shape input_shape = {};   // (steps, embed_dim)
  std::string name = "";
  int64_t embed_dim = 0;    // 0: the input's last dim; else the input's last dim must equal it
  double dropout = 0.0;     // on the attention weights, in training
  bool use_bias = true;     // PyTorch's bias: in_proj_bias and out_proj.bias
  bool causal = false;      // query i attends keys j <= i
  // Two inputs, (query, value): keys and values come from the second, whose last dim must be
  // embed_dim too (PyTorch's packed in_proj_weight). Without it the layer takes one input.
  bool cross_attention = false;
};

// softmax(q k^T / sqrt(E / H)) v over H heads, by the fused scaled_dot_product_attention.
class MultiHeadAttention : public Layer {
 public:
  explicit MultiHeadAttention(int64_t num_heads, MultiHeadAttentionOptions options = {});
  std::string type_name() const override { return "MultiHeadAttention"; }
  NEUTRINO_LAYER_CLONE(MultiHeadAttention)
  int num_inputs() const override { return options_.cross_attention ? 2 : 1; }
  Shape output_shape(const Shape& input_shape) const override;
  Shape output_shape_for(const std::vector<Shape>& input_shapes) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  Tensor compute_mask(const Tensor&, const Tensor& mask) const override { return mask; }
  int64_t num_heads() const { return num_heads_; }
  const MultiHeadAttentionOptions& options() const { return options_; }

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override { return attend(x, x, Tensor()); }
  Tensor call_masked(const Tensor& x, const Tensor& mask) override { return attend(x, x, mask); }
  Tensor call_inputs(const std::vector<Tensor>& inputs) override;

 private:
  // The embed dim for a per-sample shape (steps, E); a ShapeError naming the layer otherwise.
  int64_t embed_dim_for(const Shape& shape) const;
  // query (B, Tq, E), source (B, Tk, E); key_mask: undefined or bool (B, Tk), true at real keys.
  Tensor attend(const Tensor& query, const Tensor& source, const Tensor& key_mask);
  int64_t num_heads_;
  MultiHeadAttentionOptions options_;
  Tensor in_proj_weight_, in_proj_bias_;
  LayerPtr out_proj_;
};

struct RMSNormOptions {
  Shape input_shape = {};
  std::string name = "";
  double epsilon = 1e-6;  // Keras's RMSNormalization default (LLaMA's)
};
// Normalizes over the last axis by the root mean square (ops::rms_norm). Parameter: weight.
class RMSNorm : public Layer {
 public:
  explicit RMSNorm(RMSNormOptions options = {});
  std::string type_name() const override { return "RMSNorm"; }
  NEUTRINO_LAYER_CLONE(RMSNorm)
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  Tensor compute_mask(const Tensor&, const Tensor& mask) const override { return mask; }
  const RMSNormOptions& options() const { return options_; }

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override;

 private:
  RMSNormOptions options_;
  Tensor weight_;
};

struct TransformerBlockOptions {
  Shape input_shape = {};      // (steps, d_model)
  std::string name = "";
  int64_t dim_feedforward = 0;  // the MLP's hidden size; 0: 4 * d_model
  double dropout = 0.0;        // attention weights, the MLP's hidden layer, both residual branches
  std::string mlp = "gelu";    // "gelu" or "relu" (linear2(act(linear1(x)))), or "swiglu"
                               // (linear2(silu(linear_gate(x)) * linear1(x)))
  std::string norm = "layernorm";  // "layernorm" (weight, bias) or "rmsnorm" (weight)
  double norm_eps = 1e-5;      // PyTorch's layer_norm_eps
  bool causal = false;
  bool use_bias = true;        // biases of the attention, the linears and the layernorms
};

// One pre-LN block: x + dropout(attn(norm1(x))), then + dropout(mlp(norm2(x))).
class TransformerBlock : public Layer {
 public:
  explicit TransformerBlock(int64_t num_heads, TransformerBlockOptions options = {});
  std::string type_name() const override { return "TransformerBlock"; }
  NEUTRINO_LAYER_CLONE(TransformerBlock)
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  Tensor compute_mask(const Tensor&, const Tensor& mask) const override { return mask; }
  int64_t num_heads() const { return num_heads_; }
  const TransformerBlockOptions& options() const { return options_; }
  int64_t hidden_size(int64_t d_model) const;

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override { return call_masked(x, Tensor()); }
  Tensor call_masked(const Tensor& x, const Tensor& mask) override;

 private:
  // The sub-layers, unbuilt, named as PyTorch's (self_attn, linear1, ...), in its order.
  std::vector<std::pair<std::string, LayerPtr>> make_parts(int64_t d_model) const;
  Tensor mlp(const Tensor& x, double p);
  int64_t num_heads_;
  TransformerBlockOptions options_;
  LayerPtr attn_, linear1_, gate_, linear2_, norm1_, norm2_;
};

struct TransformerEncoderOptions {
  Shape input_shape = {};
  std::string name = "";
  int64_t dim_feedforward = 0;
  double dropout = 0.0;
  std::string mlp = "gelu";
  std::string norm = "layernorm";
  double norm_eps = 1e-5;
  bool causal = false;
  bool use_bias = true;
  bool final_norm = true;  // a norm (of the blocks' kind) after the last block: norm.weight/.bias
};

// num_layers TransformerBlocks (layers.0, layers.1, ...) and the optional final norm.
class TransformerEncoder : public Layer {
 public:
  TransformerEncoder(int64_t num_layers, int64_t num_heads, TransformerEncoderOptions options = {});
  std::string type_name() const override { return "TransformerEncoder"; }
  NEUTRINO_LAYER_CLONE(TransformerEncoder)
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  Tensor compute_mask(const Tensor&, const Tensor& mask) const override { return mask; }
  int64_t num_layers() const { return num_layers_; }
  int64_t num_heads() const { return num_heads_; }
  const TransformerEncoderOptions& options() const { return options_; }
  // The options of each block.
  TransformerBlockOptions block_options() const;

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override { return call_masked(x, Tensor()); }
  Tensor call_masked(const Tensor& x, const Tensor& mask) override;

 private:
  int64_t num_layers_, num_heads_;
  TransformerEncoderOptions options_;
  std::vector<LayerPtr> blocks_;
  LayerPtr norm_;
};

}  // namespace neutrino::nn
