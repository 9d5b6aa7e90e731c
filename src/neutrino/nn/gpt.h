// GPT: a decoder-only Transformer language model with nanoGPT's parameter names and nn.Linear
// layouts, so a PyTorch nanoGPT / GPT-2 state dict (saved as safetensors) loads with
// load_state_dict:
//   transformer.wte.weight (vocab, d)            transformer.wpe.weight (context, d)  [learned]
//   transformer.h.<i>.ln_1.weight / .bias (d)    transformer.h.<i>.attn.c_attn.weight (3d, d) / .bias
//   transformer.h.<i>.attn.c_proj.weight (d, d)  transformer.h.<i>.ln_2.weight / .bias
//   transformer.h.<i>.mlp.c_fc.weight (4d, d)    transformer.h.<i>.mlp.c_proj.weight (d, 4d)
//   transformer.ln_f.weight / .bias              lm_head.weight (vocab, d)  [only when untied]
// SwiGLU adds mlp.c_gate (hidden, d) beside c_fc; RMSNorm has weights only; bias: false drops
// every bias (Linear and norm).
//
//   nn::GPT gpt({.vocab_size = 96, .context = 128, .layers = 4, .heads = 4, .d_model = 128});
//   Tensor logits = gpt.forward(tokens);                // int64 (B, T) -> (B, T, vocab)
//   auto out = generate(gpt, prompts, {.max_tokens = 100, .temperature = 0.8, .top_k = 40});
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "neutrino/nn/lora.h"
#include "neutrino/nn/module.h"

namespace neutrino::nn {

struct GPTOptions {
  int64_t vocab_size = 50304;
  int64_t context = 1024;   // the longest sequence (block_size)
  int64_t layers = 12;
  int64_t heads = 12;
  int64_t d_model = 768;
  std::string mlp = "gelu";        // "gelu" (4d hidden, tanh-free GELU as nn.GELU) or "swiglu"
  int64_t mlp_hidden = 0;          // 0: 4 * d_model for gelu, 8/3 * d_model rounded to 8 for swiglu
  std::string norm = "layernorm";  // "layernorm" or "rmsnorm"
  std::string positions = "learned";  // "learned" (wpe), "rope" or "none"
  bool tie_embeddings = true;      // lm_head shares wte's weight
  double dropout = 0.0;            // on embeddings, attention weights, residual branches
  bool bias = true;                // biases in Linear layers and norms
  double norm_eps = 1e-5;
  double rope_base = 10000.0;
};

// Checks every field (positive sizes, heads divide d_model, known kinds, rope needs an even head
// size, sizes within limits); a ValueError names the field.
void check_gpt_options(const GPTOptions& options);
// As JSON text ({"vocab_size": ..., ...}) and back; unknown or mistyped fields are an error
// naming `path` and the field.
std::string gpt_options_to_json(const GPTOptions& options);
GPTOptions gpt_options_from_json(const std::string& text, const std::string& path);
// A GPT model file's architecture ({"class_name": "GPT", "config": {options}}) and back; nullopt
// for an architecture of another class, an IOError naming `path` for a GPT one that is broken.
std::string gpt_architecture_json(const GPTOptions& options);
std::optional<GPTOptions> gpt_options_of_architecture(const std::string& text,
                                                      const std::string& path);

// The keys and values of every layer, kept between decoding steps. Each layer's k and v are
// (capacity, B, H, head_dim), so one step's rows are one contiguous block; `length` positions
// are filled.
struct KVCache {
  std::vector<Tensor> keys, values;
  int64_t length = 0;
  int64_t capacity = 0;
  // Per-row count of left padding (prompts of different lengths in one batch); empty: none.
  std::vector<int64_t> left_padding;
};

class GPT : public Module {
 public:
  explicit GPT(GPTOptions options);
  const GPTOptions& options() const { return options_; }

  // tokens int64 (B, T), T <= context -> logits (B, T, vocab).
  Tensor forward(const Tensor& tokens) override;
  using Module::forward;
  // Rows that start with left_padding[b] padding tokens (prompts of different lengths in one
  // batch): those keys are masked, and learned positions count from each row's first real token.
  Tensor forward_padded(const Tensor& tokens, const std::vector<int64_t>& left_padding);
  // The final hidden states (B, T, d) after ln_f, before the head (for classifiers, embeddings);
  // key_padding: undefined or bool broadcastable to (B, 1, T, T), true where a key is real.
  Tensor hidden_states(const Tensor& tokens, const Tensor& key_padding = Tensor());

  // An empty cache for `batch` sequences of up to `capacity` tokens (<= context).
  KVCache new_cache(int64_t batch, int64_t capacity) const;
  // Runs `tokens` (B, T_new) after the cache's positions, appends their keys and values, and
  // returns the logits of the new positions (B, T_new, vocab). Inference only (no gradient).
  Tensor forward_cached(const Tensor& tokens, KVCache& cache);

  // Parameters that weight decay applies to (2-D weights: Linear and embeddings), by name; the
  // rest (biases, norm weights) are not decayed, as nanoGPT's configure_optimizers.
  std::vector<std::string> decayed_parameter_names() const;
  // Forward-pass FLOPs per token at sequence length T (6N + 12 L T d for a training step's
  // forward and backward, as PaLM's appendix B; N the non-embedding parameter count).
  double training_flops_per_token(int64_t sequence_length) const;
  int64_t parameter_count(bool include_embeddings = true) const;

  // LoRA (nn/lora.h) on the blocks' Linears that `options.targets` match (their names as
  // "transformer.h.<i>.attn.c_attn"): each gains transformer.h.<i>.attn.c_attn.lora_A.weight
  // (rank, in) and .lora_B.weight (out, rank) as PEFT names them, and every other parameter stops
  // requiring grad. A target matching no Linear is an error (ValueError) naming it and listing the
  // Linears; enabling twice is an error.
  void enable_lora(const LoraOptions& options);
  const std::optional<LoraOptions>& lora_options() const { return lora_; }
  // The adapters' tensors by name (empty without LoRA).
  std::map<std::string, Tensor> lora_state() const;
  // Copies adapters in by name: the same names as lora_state() (missing and unexpected ones
  // listed) and shapes (both named), else a ValueError and nothing copied.
  void load_lora_state(const std::map<std::string, Tensor>& state);
  // Folds every adapter into its weight (W += B A * alpha / rank) and removes the adapters: the
  // model is an ordinary GPT again, every parameter requiring grad.
  void merge_lora();
  // The parameters LoRA keeps out of training (all but the adapters; empty without LoRA).
  std::vector<std::string> frozen_parameter_names() const;

 private:
  struct Block;
  Tensor run(const Tensor& tokens, KVCache* cache, const std::vector<int64_t>& left_padding,
             const Tensor& key_padding, bool logits);
  Tensor attention(const Block& blk, size_t layer, const Tensor& x, KVCache* cache,
                   const Tensor& key_padding) const;
  Tensor mlp(const Block& blk, const Tensor& x) const;
  Tensor embed(const Tensor& tokens, int64_t start, const std::vector<int64_t>& left_padding) const;
  void check_tokens(const Tensor& tokens, int64_t start) const;
  GPTOptions options_;
  std::optional<LoraOptions> lora_;
  Tensor wte_, wpe_, ln_f_weight_, ln_f_bias_, lm_head_;
  std::vector<std::shared_ptr<Block>> blocks_;
};

struct GenerateOptions {
  int64_t max_tokens = 100;  // new tokens per prompt
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0: no top-k
  double top_p = 1.0;        // nucleus sampling; 1: off
  uint64_t seed = 0;
  bool use_cache = true;     // off: every step runs the whole sequence (the reference)
  // Stops a row once its generated tokens end with one of these sequences.
  std::vector<std::vector<int64_t>> stop = {};
  // A prompt longer than the context minus max_tokens: refused (false) or cut from the left.
  bool truncate_prompt = false;
};

struct GenerateResult {
  std::vector<std::vector<int64_t>> tokens;  // the new tokens of each prompt (without the prompt)
  std::vector<std::string> finish_reason;    // "length" or "stop"
  int64_t prompt_tokens = 0;
  double seconds = 0;  // decoding time, prompt processing included
};

// Called after each decoding step with the step's new token for every still-running row
// (-1 for rows that have finished); returning false stops generation.
using TokenCallback = std::function<bool(const std::vector<int64_t>& tokens)>;

// Autoregressive sampling from `prompts` (each non-empty; different lengths are left-padded and
// masked). Errors (ValueError) name the option: max_tokens < 1 or beyond the context, a NaN or
// negative temperature, top_p outside (0, 1], top_k < 0, a token outside the vocabulary.
GenerateResult generate(GPT& model, const std::vector<std::vector<int64_t>>& prompts,
                        const GenerateOptions& options = {}, const TokenCallback& on_token = {});

}  // namespace neutrino::nn
