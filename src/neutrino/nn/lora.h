// LoRA (Hu et al. 2021, "Low-Rank Adaptation of Large Language Models"), as Hugging Face PEFT
// builds it: a targeted Linear W (out, in) gains lora_A (rank, in), Kaiming-uniform as PEFT's
// default init (U(-1/sqrt(in), 1/sqrt(in))), and lora_B (out, rank), zeros, so a fresh adapter
// changes nothing; its output becomes
//
//   y = x W^T + b + dropout(x) A^T B^T * (alpha / rank)
//
// composed of existing ops (linear, mul, add, dropout), so autograd needs no new op. Only A and B
// train; merging folds B A * (alpha / rank) into W, after which the Linear is an ordinary one.
// nn::GPT applies it to the Linears of its blocks (GPT::enable_lora, nn/gpt.h).
//
//   gpt.enable_lora({.rank = 8, .alpha = 16, .dropout = 0.05, .targets = {"c_attn", "c_proj"}});
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::nn {

struct LoraOptions {
  int64_t rank = 8;      // r
  double alpha = 16;     // lora_alpha: the update is scaled by alpha / rank
  double dropout = 0.0;  // lora_dropout, on the adapter's input only
  // Which Linears get an adapter, as PEFT's target_modules: a target matches a module whose name
  // is it or ends with "." + it ("c_attn", "c_proj" for both attn.c_proj and mlp.c_proj,
  // "mlp.c_fc"), or, holding * ? or [, a shell glob over the whole name ("transformer.h.1.*").
  std::vector<std::string> targets = {"c_attn"};

  double scaling() const { return alpha / static_cast<double>(rank); }
};

// Errors (ValueError) name the config field: "lora.rank: must be >= 1, got 0", alpha <= 0,
// dropout outside [0, 1), empty targets or an empty target.
void check_lora_options(const LoraOptions& options);
// {"rank": 8, "alpha": 16, "dropout": 0, "targets": ["c_attn"]} and back; unknown or mistyped
// fields are errors naming `path` and the field ("lora.rank: ...").
std::string lora_options_to_json(const LoraOptions& options);
LoraOptions lora_options_from_json(const std::string& text, const std::string& path);

// Whether a module name ("transformer.h.0.attn.c_attn") is matched by a target.
bool lora_target_matches(const std::string& module_name, const std::string& target);

// One Linear's adapter; undefined tensors: none.
struct LoraAdapter {
  Tensor a;  // lora_A.weight (rank, in)
  Tensor b;  // lora_B.weight (out, rank)
  double scaling = 0;
  double dropout = 0;
  bool active() const { return a.defined(); }
};

// A fresh adapter for a Linear of `in` inputs and `out` outputs (both requiring grad), drawn from
// the global generator.
LoraAdapter make_lora_adapter(int64_t out, int64_t in, const LoraOptions& options);

// linear(x, weight, bias) plus the adapter's update when it is active; dropout only when
// `training`.
Tensor lora_linear(const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const LoraAdapter& adapter, bool training);

// weight += B A * scaling, in place and without gradient.
void merge_lora_into(const Tensor& weight, const LoraAdapter& adapter);

}  // namespace neutrino::nn
