#include "neutrino/nn/transformer_config.h"

#include "neutrino/io/option_fields.h"
#include "neutrino/nn/transformer.h"

namespace neutrino::nn {

using nlohmann::json;

namespace {
constexpr int64_t kMaxHeads = int64_t{1} << 16;
constexpr int64_t kMaxBlocks = 1024;
}  // namespace

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, MultiHeadAttentionOptions>
void option_fields(Self& o, F&& f) {
  f("embed_dim", o.embed_dim, 0, kMaxLayerElements);
  f("dropout", o.dropout, 0.0, 0.99);
  f("use_bias", o.use_bias);
  f("causal", o.causal);
  f("cross_attention", o.cross_attention);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, RMSNormOptions>
void option_fields(Self& o, F&& f) {
  f("epsilon", o.epsilon, 1e-30, 1e6);
}

// The fields a TransformerBlock and a TransformerEncoder share.
template <class Self, class F>
void block_fields(Self& o, F&& f) {
  f("dim_feedforward", o.dim_feedforward, 0, kMaxLayerElements);
  f("dropout", o.dropout, 0.0, 0.99);
  f("mlp", o.mlp);
  f("norm", o.norm);
  f("norm_eps", o.norm_eps, 1e-30, 1e6);
  f("causal", o.causal);
  f("use_bias", o.use_bias);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, TransformerBlockOptions>
void option_fields(Self& o, F&& f) {
  block_fields(o, f);
}

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, TransformerEncoderOptions>
void option_fields(Self& o, F&& f) {
  block_fields(o, f);
  f("final_norm", o.final_norm);
}

LayerPtr transformer_layer_from_config(const std::string& type, io::ConfigReader& r,
                                       const Shape& input_shape, const std::string& name) {
  if (type == "MultiHeadAttention") {
    const int64_t heads = r.require_int("num_heads", 1, kMaxHeads);
    MultiHeadAttentionOptions o{.input_shape = input_shape, .name = name};
    io::read_fields(r, o);
    return std::make_shared<MultiHeadAttention>(heads, o);
  }
  if (type == "RMSNorm") {
    RMSNormOptions o{.input_shape = input_shape, .name = name};
    io::read_fields(r, o);
    return std::make_shared<RMSNorm>(o);
  }
  if (type == "TransformerBlock") {
    const int64_t heads = r.require_int("num_heads", 1, kMaxHeads);
    TransformerBlockOptions o{.input_shape = input_shape, .name = name};
    io::read_fields(r, o);
    return std::make_shared<TransformerBlock>(heads, o);
  }
  if (type == "TransformerEncoder") {
    const int64_t layers = r.require_int("num_layers", 1, kMaxBlocks);
    const int64_t heads = r.require_int("num_heads", 1, kMaxHeads);
    TransformerEncoderOptions o{.input_shape = input_shape, .name = name};
    io::read_fields(r, o);
    return std::make_shared<TransformerEncoder>(layers, heads, o);
  }
  return nullptr;
}

bool transformer_layer_to_config(const Layer& layer, json& c) {
  if (const auto* a = dynamic_cast<const MultiHeadAttention*>(&layer)) {
    c["num_heads"] = a->num_heads();
    io::write_fields(a->options(), c);
  } else if (const auto* n = dynamic_cast<const RMSNorm*>(&layer)) {
    io::write_fields(n->options(), c);
  } else if (const auto* b = dynamic_cast<const TransformerBlock*>(&layer)) {
    c["num_heads"] = b->num_heads();
    io::write_fields(b->options(), c);
  } else if (const auto* e = dynamic_cast<const TransformerEncoder*>(&layer)) {
    c.update({{"num_layers", e->num_layers()}, {"num_heads", e->num_heads()}});
    io::write_fields(e->options(), c);
  } else {
    return false;
  }
  return true;
}

std::string describe_transformer_layer_options() {
  std::string out = io::describe_line<MultiHeadAttentionOptions>("MultiHeadAttention(num_heads)");
  out += io::describe_line<RMSNormOptions>("RMSNorm");
  out += io::describe_line<TransformerBlockOptions>("TransformerBlock(num_heads)");
  out += io::describe_line<TransformerEncoderOptions>("TransformerEncoder(num_layers, num_heads)");
  return out;
}

}  // namespace neutrino::nn
