// nn::GPT: embeddings, pre-LN Transformer blocks (causal self-attention, GELU or SwiGLU MLP,
// residuals), the final norm and the (tied) head, with nanoGPT's names and initialization.
#include "neutrino/nn/gpt.h"

#include <cmath>

#include <fmt/ranges.h>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/error.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/io/option_fields.h"
#include "neutrino/nn/layers.h"
#include "neutrino/ops/ops.h"

namespace neutrino::nn {

using nlohmann::json;

template <class Self, class F>
  requires std::same_as<std::remove_const_t<Self>, GPTOptions>
void option_fields(Self& o, F&& f) {
  f("vocab_size", o.vocab_size, 1, int64_t{1} << 22);
  f("context", o.context, 1, int64_t{1} << 20);
  f("layers", o.layers, 1, 1024);
  f("heads", o.heads, 1, 1024);
  f("d_model", o.d_model, 1, int64_t{1} << 16);
  f("mlp", o.mlp);
  f("mlp_hidden", o.mlp_hidden, 0, int64_t{1} << 18);
  f("norm", o.norm);
  f("positions", o.positions);
  f("tie_embeddings", o.tie_embeddings);
  f("dropout", o.dropout, 0.0, 0.99);
  f("bias", o.bias);
  f("norm_eps", o.norm_eps, 0.0, 1.0);
  f("rope_base", o.rope_base, 1.0, 1e12);
}

namespace {

int64_t mlp_hidden_of(const GPTOptions& o) {
  if (o.mlp_hidden > 0) return o.mlp_hidden;
  if (o.mlp == "swiglu") return (8 * o.d_model / 3 + 7) / 8 * 8;
  return 4 * o.d_model;
}

// A module that only names its tensors and children (transformer, transformer.h, ...).
struct Holder : Module {
  using Module::clear_registrations;
  using Module::register_module;
  using Module::register_parameter;
};

}  // namespace

void check_gpt_options(const GPTOptions& o) {
  // The same ranges as the config and file readers (option_fields), for options built in C++.
  json j;
  io::write_fields(o, j);
  io::ConfigReader r(j, "GPT");
  GPTOptions checked;
  io::read_fields(r, checked);
  NEUTRINO_CHECK_VALUE(o.mlp == "gelu" || o.mlp == "swiglu",
                       "GPT.mlp: expected \"gelu\" or \"swiglu\", got \"{}\"", o.mlp);
  NEUTRINO_CHECK_VALUE(o.norm == "layernorm" || o.norm == "rmsnorm",
                       "GPT.norm: expected \"layernorm\" or \"rmsnorm\", got \"{}\"", o.norm);
  NEUTRINO_CHECK_VALUE(o.positions == "learned" || o.positions == "rope" || o.positions == "none",
                       "GPT.positions: expected \"learned\", \"rope\" or \"none\", got \"{}\"",
                       o.positions);
  NEUTRINO_CHECK_VALUE(o.d_model % o.heads == 0, "GPT: heads ({}) must divide d_model ({})",
                       o.heads, o.d_model);
  NEUTRINO_CHECK_VALUE(o.positions != "rope" || (o.d_model / o.heads) % 2 == 0,
                       "GPT.positions: rope needs an even head size, got d_model / heads = {}",
                       o.d_model / o.heads);
  const int64_t hidden = mlp_hidden_of(o);
  const double per_layer = 4.0 * o.d_model * o.d_model + 3.0 * o.d_model * hidden;
  const double total = o.layers * per_layer + 2.0 * o.vocab_size * o.d_model +
                       static_cast<double>(o.context) * o.d_model;
  NEUTRINO_CHECK_VALUE(total <= static_cast<double>(kMaxLayerElements) * 4,
                       "GPT: {:.3g} parameters is beyond the limit of {:.3g}", total,
                       static_cast<double>(kMaxLayerElements) * 4);
}

std::string gpt_options_to_json(const GPTOptions& options) {
  json j = json::object();
  io::write_fields(options, j);
  return j.dump();
}

GPTOptions gpt_options_from_json(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw ValueError(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
  NEUTRINO_CHECK_VALUE(j.is_object(), "{}: expected a map of GPT options", path);
  io::ConfigReader r(j, path);
  GPTOptions o;
  io::read_fields(r, o);
  r.finish();
  check_gpt_options(o);
  return o;
}

std::string gpt_architecture_json(const GPTOptions& options) {
  json j = {{"class_name", "GPT"}, {"config", json::parse(gpt_options_to_json(options))}};
  return j.dump();
}

std::optional<GPTOptions> gpt_options_of_architecture(const std::string& text,
                                                      const std::string& path) {
  const json j = io::parse_json(text, path + ": architecture");
  if (!j.is_object() || j.value("class_name", std::string()) != "GPT") return std::nullopt;
  NEUTRINO_CHECK_IO(j.contains("config") && j["config"].is_object(),
                    "{}: architecture.config: expected a map of GPT options", path);
  try {
    return gpt_options_from_json(j["config"].dump(), path + ": architecture.config");
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
}

// One pre-LN block: x + attn(norm1(x)), then + mlp(norm2(x)). Its tensors are named as
// nanoGPT's Block (ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj).
struct GPT::Block : Module {
  Tensor ln1_w, ln1_b, ln2_w, ln2_b, attn_w, attn_b, proj_w, proj_b, fc_w, fc_b, gate_w, gate_b,
      mlp_proj_w, mlp_proj_b;
  // LoRA adapters of the Linears (inactive unless GPT::enable_lora made them).
  LoraAdapter attn_lora, proj_lora, fc_lora, gate_lora, mlp_proj_lora;

  // A Linear of the block: its name in the block, weight, bias, adapter and the module holding them.
  struct Linear {
    const char* name;
    Tensor& weight;
    Tensor& bias;
    LoraAdapter& lora;
    std::shared_ptr<Holder> holder;
  };
  std::vector<Linear> linears() {
    std::vector<Linear> out{{"attn.c_attn", attn_w, attn_b, attn_lora, c_attn_},
                            {"attn.c_proj", proj_w, proj_b, proj_lora, c_proj_},
                            {"mlp.c_fc", fc_w, fc_b, fc_lora, c_fc_}};
    if (c_gate_) out.push_back({"mlp.c_gate", gate_w, gate_b, gate_lora, c_gate_});
    out.push_back({"mlp.c_proj", mlp_proj_w, mlp_proj_b, mlp_proj_lora, m_proj_});
    return out;
  }
  std::shared_ptr<Holder> c_attn_, c_proj_, c_fc_, c_gate_, m_proj_;

  explicit Block(const GPTOptions& o) {
    const int64_t d = o.d_model, hidden = mlp_hidden_of(o);
    // nanoGPT: N(0, 0.02) weights, zero biases, residual projections scaled by 1/sqrt(2 L).
    const double std_proj = 0.02 / std::sqrt(2.0 * static_cast<double>(o.layers));
    auto linear_w = [](int64_t out, int64_t in, double std) {
      return Tensor::normal({out, in}, 0.0, std).set_requires_grad();
    };
    auto vec = [](int64_t n, double value) { return Tensor::full({n}, value).set_requires_grad(); };
    auto ln1 = std::make_shared<Holder>(), ln2 = std::make_shared<Holder>();
    ln1_w = ln1->register_parameter("weight", vec(d, 1.0));
    if (o.bias && o.norm == "layernorm") ln1_b = ln1->register_parameter("bias", vec(d, 0.0));
    auto attn = std::make_shared<Holder>(), c_attn = std::make_shared<Holder>(),
         c_proj = std::make_shared<Holder>();
    attn_w = c_attn->register_parameter("weight", linear_w(3 * d, d, 0.02));
    if (o.bias) attn_b = c_attn->register_parameter("bias", vec(3 * d, 0.0));
    proj_w = c_proj->register_parameter("weight", linear_w(d, d, std_proj));
    if (o.bias) proj_b = c_proj->register_parameter("bias", vec(d, 0.0));
    attn->register_module("c_attn", c_attn);
    attn->register_module("c_proj", c_proj);
    c_attn_ = c_attn;
    c_proj_ = c_proj;
    ln2_w = ln2->register_parameter("weight", vec(d, 1.0));
    if (o.bias && o.norm == "layernorm") ln2_b = ln2->register_parameter("bias", vec(d, 0.0));
    auto mlp = std::make_shared<Holder>(), c_fc = std::make_shared<Holder>(),
         m_proj = std::make_shared<Holder>();
    fc_w = c_fc->register_parameter("weight", linear_w(hidden, d, 0.02));
    if (o.bias) fc_b = c_fc->register_parameter("bias", vec(hidden, 0.0));
    mlp->register_module("c_fc", c_fc);
    c_fc_ = c_fc;
    if (o.mlp == "swiglu") {
      auto c_gate = std::make_shared<Holder>();
      gate_w = c_gate->register_parameter("weight", linear_w(hidden, d, 0.02));
      if (o.bias) gate_b = c_gate->register_parameter("bias", vec(hidden, 0.0));
      mlp->register_module("c_gate", c_gate);
      c_gate_ = c_gate;
    }
    mlp_proj_w = m_proj->register_parameter("weight", linear_w(d, hidden, std_proj));
    if (o.bias) mlp_proj_b = m_proj->register_parameter("bias", vec(d, 0.0));
    mlp->register_module("c_proj", m_proj);
    m_proj_ = m_proj;
    register_module("ln_1", ln1);
    register_module("attn", attn);
    register_module("ln_2", ln2);
    register_module("mlp", mlp);
  }
};

GPT::GPT(GPTOptions options) : options_(std::move(options)) {
  check_gpt_options(options_);
  const GPTOptions& o = options_;
  auto transformer = std::make_shared<Holder>();
  auto wte = std::make_shared<Holder>();
  wte_ = wte->register_parameter("weight",
                                 Tensor::normal({o.vocab_size, o.d_model}, 0.0, 0.02).set_requires_grad());
  transformer->register_module("wte", wte);
  if (o.positions == "learned") {
    auto wpe = std::make_shared<Holder>();
    wpe_ = wpe->register_parameter("weight",
                                   Tensor::normal({o.context, o.d_model}, 0.0, 0.02).set_requires_grad());
    transformer->register_module("wpe", wpe);
  }
  auto h = std::make_shared<Holder>();
  for (int64_t i = 0; i < o.layers; ++i) {
    blocks_.push_back(std::make_shared<Block>(o));
    h->register_module(std::to_string(i), blocks_.back());
  }
  transformer->register_module("h", h);
  auto ln_f = std::make_shared<Holder>();
  ln_f_weight_ = ln_f->register_parameter("weight", Tensor::ones({o.d_model}).set_requires_grad());
  if (o.bias && o.norm == "layernorm") {
    ln_f_bias_ = ln_f->register_parameter("bias", Tensor::zeros({o.d_model}).set_requires_grad());
  }
  transformer->register_module("ln_f", ln_f);
  register_module("transformer", transformer);
  if (o.tie_embeddings) {
    lm_head_ = wte_;
  } else {
    auto head = std::make_shared<Holder>();
    lm_head_ = head->register_parameter(
        "weight", Tensor::normal({o.vocab_size, o.d_model}, 0.0, 0.02).set_requires_grad());
    register_module("lm_head", head);
  }
}

namespace {

Tensor normalize(const GPTOptions& o, const Tensor& x, const Tensor& w, const Tensor& b) {
  if (o.norm == "rmsnorm") return rms_norm(x, w, o.norm_eps);
  return layer_norm(x, {o.d_model}, w, b, o.norm_eps);
}

// (B, T, C) columns [c0, c0 + C) of qkv as heads (B, H, T, D), a view.
Tensor heads_of(const Tensor& qkv, int64_t c0, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), c = qkv.size(2) / 3;
  return permute(reshape(slice(qkv, 2, c0, c0 + c), {b, t, heads, c / heads}), {0, 2, 1, 3});
}

}  // namespace

// Attention of x (B, T, C) at positions [start, start + T) of the sequence: q, k, v from one
// projection, RoPE on q and k, the keys and values of earlier positions from the cache (which
// gains this step's), causal attention under the key padding mask, the output projection.
Tensor GPT::attention(const Block& blk, size_t layer, const Tensor& x, KVCache* cache,
                      const Tensor& key_padding) const {
  const GPTOptions& o = options_;
  const int64_t b = x.size(0), t = x.size(1), c = o.d_model, hd = c / o.heads;
  const bool training = is_training();
  const Tensor qkv = lora_linear(x, blk.attn_w, blk.attn_b, blk.attn_lora, training);
  Tensor q = heads_of(qkv, 0, o.heads), k = heads_of(qkv, c, o.heads),
         v = heads_of(qkv, 2 * c, o.heads);
  const int64_t start = cache ? cache->length : 0;
  if (o.positions == "rope") {
    q = rotary_embedding(q, start, o.rope_base);
    k = rotary_embedding(k, start, o.rope_base);
  }
  if (cache) {
    // The cache is (capacity, B, H, D) so that this step's rows are one contiguous block.
    Tensor& ck = cache->keys[layer];
    Tensor& cv = cache->values[layer];
    slice(ck, 0, start, start + t).copy_(permute(k, {2, 0, 1, 3}));
    slice(cv, 0, start, start + t).copy_(permute(v, {2, 0, 1, 3}));
    k = permute(slice(ck, 0, 0, start + t), {1, 2, 0, 3});
    v = permute(slice(cv, 0, 0, start + t), {1, 2, 0, 3});
  }
  const double p = training ? o.dropout : 0.0;
  Tensor y = scaled_dot_product_attention(q, k, v, key_padding, {.causal = true, .dropout = p});
  y = reshape(contiguous(permute(y, {0, 2, 1, 3})), {b, t, hd * o.heads});
  return lora_linear(y, blk.proj_w, blk.proj_b, blk.proj_lora, training);
}

Tensor GPT::mlp(const Block& blk, const Tensor& x) const {
  const bool training = is_training();
  const Tensor fc = lora_linear(x, blk.fc_w, blk.fc_b, blk.fc_lora, training);
  const Tensor hidden =
      options_.mlp == "swiglu"
          ? mul(silu(lora_linear(x, blk.gate_w, blk.gate_b, blk.gate_lora, training)), fc)
          : gelu(fc);
  return lora_linear(hidden, blk.mlp_proj_w, blk.mlp_proj_b, blk.mlp_proj_lora, training);
}

// Token embeddings plus learned positions: position p of row r is p minus r's left padding, so a
// left-padded prompt sees the positions it would have alone (RoPE needs no such shift: its
// scores depend only on the distance between positions).
Tensor GPT::embed(const Tensor& tokens, int64_t start, const std::vector<int64_t>& left_padding) const {
  const int64_t b = tokens.size(0), t = tokens.size(1);
  Tensor x = embedding(wte_, tokens);
  if (options_.positions != "learned") return x;
  if (left_padding.empty()) {
    const Tensor pos = arange(static_cast<double>(start), static_cast<double>(start + t), 1,
                              DType::kInt64);
    return add(x, embedding(wpe_, pos));
  }
  std::vector<int64_t> pos(static_cast<size_t>(b * t));
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t i = 0; i < t; ++i) {
      pos[static_cast<size_t>(r * t + i)] = std::max<int64_t>(0, start + i - left_padding[static_cast<size_t>(r)]);
    }
  }
  return add(x, embedding(wpe_, Tensor::from_vector(pos, {b, t})));
}

void GPT::check_tokens(const Tensor& tokens, int64_t start) const {
  NEUTRINO_CHECK_VALUE(tokens.dtype() == DType::kInt64,
                       "GPT: tokens must be int64 (batch, steps), got {}", dtype_name(tokens.dtype()));
  NEUTRINO_CHECK_SHAPE(tokens.dim() == 2 && tokens.size(0) > 0 && tokens.size(1) > 0,
                       "GPT: tokens must be (batch, steps), got {}", tokens.shape_string());
  NEUTRINO_CHECK_SHAPE(start + tokens.size(1) <= options_.context,
                       "GPT: {} positions exceed the context of {}", start + tokens.size(1),
                       options_.context);
}

// bool (B, 1, 1, keys): true where key j is not left padding of row b.
static Tensor left_padding_mask(const std::vector<int64_t>& left_padding, int64_t keys) {
  const int64_t b = static_cast<int64_t>(left_padding.size());
  const Tensor pads = Tensor::from_vector(left_padding, {b, 1, 1, 1});
  return greater_equal(reshape(arange(0, static_cast<double>(keys), 1, DType::kInt64), {1, 1, 1, keys}),
                       pads);
}

Tensor GPT::run(const Tensor& tokens, KVCache* cache, const std::vector<int64_t>& left_padding,
                const Tensor& key_padding, bool logits) {
  const int64_t start = cache ? cache->length : 0;
  check_tokens(tokens, start);
  NEUTRINO_CHECK_VALUE(left_padding.empty() || static_cast<int64_t>(left_padding.size()) == tokens.size(0),
                       "GPT: {} left paddings for {} rows", left_padding.size(), tokens.size(0));
  Tensor mask = key_padding;
  if (!left_padding.empty()) mask = left_padding_mask(left_padding, start + tokens.size(1));
  const GPTOptions& o = options_;
  const double p = is_training() ? o.dropout : 0.0;
  Tensor x = dropout(embed(tokens, start, left_padding), p, p > 0);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& blk = *blocks_[i];
    const Tensor a = attention(blk, i, normalize(o, x, blk.ln1_w, blk.ln1_b), cache, mask);
    x = add(x, dropout(a, p, p > 0));
    x = add(x, dropout(mlp(blk, normalize(o, x, blk.ln2_w, blk.ln2_b)), p, p > 0));
  }
  x = normalize(o, x, ln_f_weight_, ln_f_bias_);
  if (cache) cache->length += tokens.size(1);
  return logits ? linear(x, lm_head_, Tensor()) : x;
}

Tensor GPT::forward(const Tensor& tokens) { return run(tokens, nullptr, {}, Tensor(), true); }

Tensor GPT::forward_padded(const Tensor& tokens, const std::vector<int64_t>& left_padding) {
  return run(tokens, nullptr, left_padding, Tensor(), true);
}

Tensor GPT::hidden_states(const Tensor& tokens, const Tensor& key_padding) {
  return run(tokens, nullptr, {}, key_padding, false);
}

KVCache GPT::new_cache(int64_t batch, int64_t capacity) const {
  NEUTRINO_CHECK_VALUE(batch > 0 && capacity > 0 && capacity <= options_.context,
                       "GPT: a cache of {} positions for {} rows does not fit the context of {}",
                       capacity, batch, options_.context);
  KVCache cache;
  const int64_t hd = options_.d_model / options_.heads;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    cache.keys.push_back(Tensor::zeros({capacity, batch, options_.heads, hd}));
    cache.values.push_back(Tensor::zeros({capacity, batch, options_.heads, hd}));
  }
  cache.capacity = capacity;
  return cache;
}

Tensor GPT::forward_cached(const Tensor& tokens, KVCache& cache) {
  NEUTRINO_CHECK_VALUE(cache.keys.size() == blocks_.size() && tokens.dim() == 2 &&
                           !cache.keys.empty() && cache.keys[0].size(1) == tokens.size(0),
                       "GPT: the cache was made for another model or batch size");
  NEUTRINO_CHECK_VALUE(cache.length + tokens.size(1) <= cache.capacity,
                       "GPT: {} more positions overflow the cache ({} of {} used)", tokens.size(1),
                       cache.length, cache.capacity);
  NoGradGuard no_grad;
  return run(tokens, &cache, cache.left_padding, Tensor(), true);
}

std::vector<std::string> GPT::decayed_parameter_names() const {
  std::vector<std::string> names;
  for (const auto& [name, p] : named_parameters()) {
    if (p.dim() >= 2) names.push_back(name);
  }
  return names;
}

int64_t GPT::parameter_count(bool include_embeddings) const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters()) {
    if (!include_embeddings && (name == "transformer.wte.weight" || name == "transformer.wpe.weight")) {
      continue;
    }
    n += p.numel();
  }
  return n;
}

double GPT::training_flops_per_token(int64_t sequence_length) const {
  const double n = static_cast<double>(parameter_count(false)) +
                   static_cast<double>(options_.vocab_size * options_.d_model);  // the head's GEMM
  return 6.0 * n + 12.0 * static_cast<double>(options_.layers * options_.d_model * sequence_length);
}

namespace {

bool is_lora_name(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

std::shared_ptr<Holder> weight_holder(const Tensor& weight) {
  auto holder = std::make_shared<Holder>();
  holder->register_parameter("weight", weight);
  return holder;
}

}  // namespace

void GPT::enable_lora(const LoraOptions& options) {
  check_lora_options(options);
  NEUTRINO_CHECK_VALUE(!lora_, "lora: the model already has LoRA adapters");
  std::vector<bool> used(options.targets.size(), false);
  std::vector<Block::Linear> chosen;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    for (const Block::Linear& lin : blocks_[i]->linears()) {
      const std::string name = fmt::format("transformer.h.{}.{}", i, lin.name);
      bool match = false;
      for (size_t t = 0; t < options.targets.size(); ++t) {
        if (lora_target_matches(name, options.targets[t])) match = used[t] = true;
      }
      if (match) chosen.push_back(lin);
    }
  }
  for (size_t t = 0; t < options.targets.size(); ++t) {
    if (used[t]) continue;
    std::vector<std::string> names;
    for (const Block::Linear& lin : blocks_[0]->linears()) names.emplace_back(lin.name);
    throw ValueError(fmt::format("lora.targets[{}]: '{}' matches no Linear; the Linears are "
                                 "transformer.h.<0..{}>.{{{}}}", t, options.targets[t],
                                 blocks_.size() - 1, fmt::join(names, ", ")));
  }
  for (auto& [name, p] : named_parameters()) p.set_requires_grad(false);
  for (Block::Linear& lin : chosen) {
    lin.lora = make_lora_adapter(lin.weight.size(0), lin.weight.size(1), options);
    lin.holder->register_module("lora_A", weight_holder(lin.lora.a));
    lin.holder->register_module("lora_B", weight_holder(lin.lora.b));
  }
  lora_ = options;
}

std::map<std::string, Tensor> GPT::lora_state() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, p] : named_parameters()) {
    if (is_lora_name(name)) out.emplace(name, p);
  }
  return out;
}

void GPT::load_lora_state(const std::map<std::string, Tensor>& state) {
  const std::map<std::string, Tensor> own = lora_state();
  std::vector<std::string> missing, unexpected;
  for (const auto& [name, t] : own) {
    if (!state.count(name)) missing.push_back(name);
  }
  for (const auto& [name, t] : state) {
    if (!own.count(name)) unexpected.push_back(name);
  }
  NEUTRINO_CHECK_VALUE(missing.empty() && unexpected.empty(),
                       "LoRA adapters do not fit the model: missing [{}], unexpected [{}]",
                       fmt::join(missing, ", "), fmt::join(unexpected, ", "));
  for (const auto& [name, t] : own) {
    const Tensor& source = state.at(name);
    NEUTRINO_CHECK_SHAPE(source.shape() == t.shape(), "{}: the adapter is {}, the model's is {}",
                         name, source.shape_string(), t.shape_string());
  }
  NoGradGuard no_grad;
  for (const auto& [name, t] : own) t.copy_(state.at(name));
}

void GPT::merge_lora() {
  if (!lora_) return;
  for (const auto& blk : blocks_) {
    for (Block::Linear& lin : blk->linears()) {
      if (!lin.lora.active()) continue;
      merge_lora_into(lin.weight, lin.lora);
      lin.lora = LoraAdapter();
      lin.holder->clear_registrations();
      lin.holder->register_parameter("weight", lin.weight);
      if (lin.bias.defined()) lin.holder->register_parameter("bias", lin.bias);
    }
  }
  for (auto& [name, p] : named_parameters()) p.set_requires_grad(true);
  lora_.reset();
}

std::vector<std::string> GPT::frozen_parameter_names() const {
  std::vector<std::string> names;
  if (!lora_) return names;
  for (const auto& [name, p] : named_parameters()) {
    if (!is_lora_name(name)) names.push_back(name);
  }
  return names;
}

}  // namespace neutrino::nn
