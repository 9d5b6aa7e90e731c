#include "neutrino/nn/transformer.h"

#include "neutrino/nn/init.h"

namespace neutrino::nn {

namespace {

constexpr int64_t kMaxHeads = int64_t{1} << 16;

// A module that only names its children (TransformerEncoder's "layers").
struct Holder : Module {
  using Module::register_module;
};

void check_dropout(double p, const char* layer) {
  NEUTRINO_CHECK_VALUE(p >= 0 && p < 1, "{}: dropout must be in [0, 1), got {}", layer, p);
}

void check_heads(int64_t heads, const char* layer) {
  NEUTRINO_CHECK_VALUE(heads >= 1 && heads <= kMaxHeads, "{}: num_heads must be in [1, {}], got {}",
                       layer, kMaxHeads, heads);
}

void check_block_kinds(const std::string& mlp, const std::string& norm, double eps, const char* layer) {
  NEUTRINO_CHECK_VALUE(mlp == "gelu" || mlp == "relu" || mlp == "swiglu",
                       "{}: mlp must be \"gelu\", \"relu\" or \"swiglu\", got \"{}\"", layer, mlp);
  NEUTRINO_CHECK_VALUE(norm == "layernorm" || norm == "rmsnorm",
                       "{}: norm must be \"layernorm\" or \"rmsnorm\", got \"{}\"", layer, norm);
  NEUTRINO_CHECK_VALUE(eps > 0, "{}: norm_eps must be positive, got {}", layer, eps);
}

// A block's or encoder's input (steps, d_model): d_model split into num_heads and, once built,
// the width it was built for; the error names the layer and the shape.
void check_sequence_shape(const Layer& layer, const Shape& shape, int64_t heads) {
  NEUTRINO_CHECK_SHAPE(shape.size() == 2 && shape[1] > 0,
                       "{} '{}': expects inputs (batch, steps, features), got per-sample shape {}",
                       layer.type_name(), layer.name(), shape_str(shape));
  NEUTRINO_CHECK_SHAPE(shape[1] % heads == 0,
                       "{} '{}': num_heads ({}) must divide d_model ({}) of input shape {}",
                       layer.type_name(), layer.name(), heads, shape[1], shape_str(shape));
  NEUTRINO_CHECK_SHAPE(!layer.built() || layer.built_input_shape()[1] == shape[1],
                       "{} '{}': built for d_model {}, got input shape {}", layer.type_name(),
                       layer.name(), layer.built() ? layer.built_input_shape()[1] : 0,
                       shape_str(shape));
}

LayerPtr make_norm(const std::string& kind, double eps, bool bias, const std::string& name) {
  if (kind == "rmsnorm") return std::make_shared<RMSNorm>(RMSNormOptions{.name = name, .epsilon = eps});
  return std::make_shared<LayerNormalization>(
      LayerNormalizationOptions{.name = name, .epsilon = eps, .center = bias});
}

void add_prefixed(WeightShapes& out, const std::string& prefix, const WeightShapes& shapes) {
  for (const auto& [name, shape] : shapes) out.emplace_back(prefix + name, shape);
}

// A batch's per-sample shape (built layers check each call's input against their weights).
Shape sample_shape(const Tensor& x) { return Shape(x.shape().begin() + 1, x.shape().end()); }

// (B, T, H * D) -> (B, H, T, D), a view.
Tensor split_heads(const Tensor& x, int64_t heads) {
  return permute(reshape(x, {x.size(0), x.size(1), heads, x.size(2) / heads}), {0, 2, 1, 3});
}

Tensor slice_or_none(const Tensor& t, int64_t start, int64_t end) {
  return t.defined() ? slice(t, 0, start, end) : Tensor();
}

}  // namespace

// ---- MultiHeadAttention ----------------------------------------------------------------------

MultiHeadAttention::MultiHeadAttention(int64_t num_heads, MultiHeadAttentionOptions options)
    : Layer(options.input_shape, options.name), num_heads_(num_heads), options_(std::move(options)) {
  check_heads(num_heads, "MultiHeadAttention");
  check_dropout(options_.dropout, "MultiHeadAttention");
  NEUTRINO_CHECK_VALUE(options_.embed_dim >= 0 && options_.embed_dim <= kMaxLayerElements,
                       "MultiHeadAttention: embed_dim must be in [0, {}], got {}", kMaxLayerElements,
                       options_.embed_dim);
}

int64_t MultiHeadAttention::embed_dim_for(const Shape& shape) const {
  NEUTRINO_CHECK_SHAPE(shape.size() == 2 && shape[1] > 0,
                       "MultiHeadAttention '{}': expects inputs (batch, steps, embed_dim), got "
                       "per-sample shape {}", name(), shape_str(shape));
  const int64_t e = shape[1];
  NEUTRINO_CHECK_SHAPE(options_.embed_dim == 0 || options_.embed_dim == e,
                       "MultiHeadAttention '{}': embed_dim is {} but the input has shape {}", name(),
                       options_.embed_dim, shape_str(shape));
  NEUTRINO_CHECK_SHAPE(e % num_heads_ == 0,
                       "MultiHeadAttention '{}': num_heads ({}) must divide embed_dim ({}) of input "
                       "shape {}", name(), num_heads_, e, shape_str(shape));
  NEUTRINO_CHECK_SHAPE(!in_proj_weight_.defined() || in_proj_weight_.size(1) == e,
                       "MultiHeadAttention '{}': built for embed_dim {}, got input shape {}", name(),
                       in_proj_weight_.defined() ? in_proj_weight_.size(1) : 0, shape_str(shape));
  return e;
}

Shape MultiHeadAttention::output_shape(const Shape& input_shape) const {
  check_input_count(1);
  embed_dim_for(input_shape);
  return input_shape;
}

Shape MultiHeadAttention::output_shape_for(const std::vector<Shape>& input_shapes) const {
  check_input_count(input_shapes.size());
  const int64_t e = embed_dim_for(input_shapes.front());
  if (input_shapes.size() == 2) {
    const Shape& source = input_shapes[1];
    NEUTRINO_CHECK_SHAPE(source.size() == 2 && source[1] == e,
                         "MultiHeadAttention '{}': the value input must be (steps, {}) like the "
                         "query {}, got {}", name(), e, shape_str(input_shapes.front()),
                         shape_str(source));
  }
  return input_shapes.front();
}

WeightShapes MultiHeadAttention::weight_shapes(const Shape& input_shape) const {
  const int64_t e = embed_dim_for(input_shape);
  WeightShapes out = {{"in_proj_weight", {3 * e, e}}};
  if (options_.use_bias) out.emplace_back("in_proj_bias", Shape{3 * e});
  out.emplace_back("out_proj.weight", Shape{e, e});
  if (options_.use_bias) out.emplace_back("out_proj.bias", Shape{e});
  return out;
}

void MultiHeadAttention::build_weights(const Shape& input_shape) {
  const int64_t e = embed_dim_for(input_shape);
  // PyTorch's initialization: xavier_uniform in_proj_weight, zero biases.
  in_proj_weight_ = register_parameter("in_proj_weight", Tensor::zeros({3 * e, e}));
  initialize(in_proj_weight_, "glorot_uniform");
  if (options_.use_bias) in_proj_bias_ = register_parameter("in_proj_bias", Tensor::zeros({3 * e}));
  out_proj_ = std::make_shared<Dense>(e, DenseOptions{.name = "out_proj", .use_bias = options_.use_bias});
  out_proj_->build({e});
  register_module("out_proj", out_proj_);
}

Tensor MultiHeadAttention::call_inputs(const std::vector<Tensor>& inputs) {
  check_input_count(inputs.size());
  return attend(inputs.front(), inputs.size() == 2 ? inputs[1] : inputs.front(), Tensor());
}

Tensor MultiHeadAttention::attend(const Tensor& query, const Tensor& source, const Tensor& key_mask) {
  embed_dim_for(sample_shape(query));
  const int64_t b = query.size(0), tq = query.size(1), e = in_proj_weight_.size(1);
  NEUTRINO_CHECK_SHAPE(source.dim() == 3 && source.size(0) == b && source.size(2) == e,
                       "MultiHeadAttention '{}': the value input must be (batch {}, steps, {}), got {}",
                       name(), b, e, source.shape_string());
  Tensor q, k, v;
  if (source.impl() == query.impl()) {
    const std::vector<Tensor> qkv = split(linear(query, in_proj_weight_, in_proj_bias_), e, 2);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else {
    q = linear(query, slice(in_proj_weight_, 0, 0, e), slice_or_none(in_proj_bias_, 0, e));
    const std::vector<Tensor> kv = split(
        linear(source, slice(in_proj_weight_, 0, e, 3 * e), slice_or_none(in_proj_bias_, e, 3 * e)), e, 2);
    k = kv[0], v = kv[1];
  }
  Tensor mask;
  if (key_mask.defined()) mask = reshape(key_mask, {b, 1, 1, source.size(1)});
  const double p = is_training() ? options_.dropout : 0.0;
  Tensor y = scaled_dot_product_attention(split_heads(q, num_heads_), split_heads(k, num_heads_),
                                          split_heads(v, num_heads_), mask,
                                          {.causal = options_.causal, .dropout = p});
  y = reshape(contiguous(permute(y, {0, 2, 1, 3})), {b, tq, e});
  return out_proj_->forward(y);
}

// ---- RMSNorm ---------------------------------------------------------------------------------

RMSNorm::RMSNorm(RMSNormOptions options)
    : Layer(options.input_shape, options.name), options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(options_.epsilon > 0, "RMSNorm: epsilon must be positive, got {}",
                       options_.epsilon);
}

Shape RMSNorm::output_shape(const Shape& input_shape) const {
  NEUTRINO_CHECK_SHAPE(!input_shape.empty(), "RMSNorm '{}': input needs a feature dim", name());
  NEUTRINO_CHECK_SHAPE(!weight_.defined() || weight_.size(0) == input_shape.back(),
                       "RMSNorm '{}': built for {} features, got input shape {}", name(),
                       weight_.defined() ? weight_.size(0) : 0, shape_str(input_shape));
  return input_shape;
}

WeightShapes RMSNorm::weight_shapes(const Shape& input_shape) const {
  output_shape(input_shape);
  return {{"weight", {input_shape.back()}}};
}

void RMSNorm::build_weights(const Shape& input_shape) {
  weight_ = register_parameter("weight", Tensor::ones({input_shape.back()}));
}

Tensor RMSNorm::call(const Tensor& x) {
  output_shape(sample_shape(x));
  return rms_norm(x, weight_, options_.epsilon);
}

// ---- TransformerBlock ------------------------------------------------------------------------

TransformerBlock::TransformerBlock(int64_t num_heads, TransformerBlockOptions options)
    : Layer(options.input_shape, options.name), num_heads_(num_heads), options_(std::move(options)) {
  check_heads(num_heads, "TransformerBlock");
  check_dropout(options_.dropout, "TransformerBlock");
  check_block_kinds(options_.mlp, options_.norm, options_.norm_eps, "TransformerBlock");
  NEUTRINO_CHECK_VALUE(options_.dim_feedforward >= 0 && options_.dim_feedforward <= kMaxLayerElements,
                       "TransformerBlock: dim_feedforward must be in [0, {}], got {}",
                       kMaxLayerElements, options_.dim_feedforward);
}

int64_t TransformerBlock::hidden_size(int64_t d_model) const {
  return options_.dim_feedforward > 0 ? options_.dim_feedforward : 4 * d_model;
}

std::vector<std::pair<std::string, LayerPtr>> TransformerBlock::make_parts(int64_t d_model) const {
  const TransformerBlockOptions& o = options_;
  const int64_t hidden = hidden_size(d_model);
  const std::string act = o.mlp == "swiglu" ? "" : o.mlp;
  std::vector<std::pair<std::string, LayerPtr>> parts;
  parts.emplace_back("self_attn", std::make_shared<MultiHeadAttention>(
      num_heads_, MultiHeadAttentionOptions{.name = "self_attn", .dropout = o.dropout,
                                            .use_bias = o.use_bias, .causal = o.causal}));
  parts.emplace_back("linear1", std::make_shared<Dense>(
      hidden, DenseOptions{.name = "linear1", .activation = act, .use_bias = o.use_bias}));
  if (o.mlp == "swiglu") {
    parts.emplace_back("linear_gate", std::make_shared<Dense>(
        hidden, DenseOptions{.name = "linear_gate", .activation = "silu", .use_bias = o.use_bias}));
  }
  parts.emplace_back("linear2", std::make_shared<Dense>(
      d_model, DenseOptions{.name = "linear2", .use_bias = o.use_bias}));
  parts.emplace_back("norm1", make_norm(o.norm, o.norm_eps, o.use_bias, "norm1"));
  parts.emplace_back("norm2", make_norm(o.norm, o.norm_eps, o.use_bias, "norm2"));
  return parts;
}

Shape TransformerBlock::output_shape(const Shape& input_shape) const {
  check_sequence_shape(*this, input_shape, num_heads_);
  return input_shape;
}

WeightShapes TransformerBlock::weight_shapes(const Shape& input_shape) const {
  output_shape(input_shape);
  const int64_t d = input_shape[1];
  WeightShapes out;
  for (const auto& [name, part] : make_parts(d)) {
    const bool after_mlp = name == "linear2";
    add_prefixed(out, name + ".", part->weight_shapes(after_mlp ? Shape{hidden_size(d)} : input_shape));
  }
  return out;
}

void TransformerBlock::build_weights(const Shape& input_shape) {
  const int64_t d = input_shape[1];
  for (auto& [name, part] : make_parts(d)) {
    part->build(name == "linear2" ? Shape{hidden_size(d)} : input_shape);
    register_module(name, part);
    LayerPtr* slot = name == "self_attn" ? &attn_ : name == "linear1" ? &linear1_
                     : name == "linear_gate" ? &gate_ : name == "linear2" ? &linear2_
                     : name == "norm1" ? &norm1_ : &norm2_;
    *slot = part;
  }
}

Tensor TransformerBlock::mlp(const Tensor& x, double p) {
  Tensor h = linear1_->forward(x);
  if (gate_) h = mul(gate_->forward(x), h);
  return linear2_->forward(dropout(h, p, p > 0));
}

Tensor TransformerBlock::call_masked(const Tensor& x, const Tensor& mask) {
  output_shape(sample_shape(x));
  const double p = is_training() ? options_.dropout : 0.0;
  const Tensor a = attn_->forward(norm1_->forward(x), mask);
  const Tensor h = add(x, dropout(a, p, p > 0));
  return add(h, dropout(mlp(norm2_->forward(h), p), p, p > 0));
}

// ---- TransformerEncoder ----------------------------------------------------------------------

TransformerEncoder::TransformerEncoder(int64_t num_layers, int64_t num_heads,
                                       TransformerEncoderOptions options)
    : Layer(options.input_shape, options.name),
      num_layers_(num_layers),
      num_heads_(num_heads),
      options_(std::move(options)) {
  NEUTRINO_CHECK_VALUE(num_layers >= 1 && num_layers <= 1024,
                       "TransformerEncoder: num_layers must be in [1, 1024], got {}", num_layers);
  TransformerBlock check(num_heads, block_options());  // the blocks' own checks, named as theirs
}

TransformerBlockOptions TransformerEncoder::block_options() const {
  const TransformerEncoderOptions& o = options_;
  return {.dim_feedforward = o.dim_feedforward, .dropout = o.dropout, .mlp = o.mlp,
          .norm = o.norm, .norm_eps = o.norm_eps, .causal = o.causal, .use_bias = o.use_bias};
}

Shape TransformerEncoder::output_shape(const Shape& input_shape) const {
  check_sequence_shape(*this, input_shape, num_heads_);
  return input_shape;
}

WeightShapes TransformerEncoder::weight_shapes(const Shape& input_shape) const {
  output_shape(input_shape);
  const WeightShapes block = TransformerBlock(num_heads_, block_options()).weight_shapes(input_shape);
  WeightShapes out;
  for (int64_t i = 0; i < num_layers_; ++i) add_prefixed(out, fmt::format("layers.{}.", i), block);
  if (options_.final_norm) {
    add_prefixed(out, "norm.", make_norm(options_.norm, options_.norm_eps, options_.use_bias, "norm")
                                   ->weight_shapes(input_shape));
  }
  return out;
}

void TransformerEncoder::build_weights(const Shape& input_shape) {
  auto layers = std::make_shared<Holder>();
  for (int64_t i = 0; i < num_layers_; ++i) {
    TransformerBlockOptions o = block_options();
    o.name = fmt::format("layers.{}", i);
    blocks_.push_back(std::make_shared<TransformerBlock>(num_heads_, o));
    blocks_.back()->build(input_shape);
    layers->register_module(std::to_string(i), blocks_.back());
  }
  register_module("layers", layers);
  if (options_.final_norm) {
    norm_ = make_norm(options_.norm, options_.norm_eps, options_.use_bias, "norm");
    norm_->build(input_shape);
    register_module("norm", norm_);
  }
}

Tensor TransformerEncoder::call_masked(const Tensor& x, const Tensor& mask) {
  output_shape(sample_shape(x));
  Tensor h = x;
  for (const LayerPtr& block : blocks_) h = block->forward(h, mask);
  return norm_ ? norm_->forward(h) : h;
}

}  // namespace neutrino::nn
