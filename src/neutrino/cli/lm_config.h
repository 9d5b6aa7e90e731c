// Language-model configs (configs/gpt_*.yaml): a YAML file whose model section is a GPT, or
// whose train section starts from a pre-trained language model (init_from):
//
//   seed: 1337
//   data:
//     train: {fortunes: [computers, science], split: train}      # any text data spec
//     validation: {fortunes: [computers, science], split: validation}
//     tokenizer: {kind: char}          # or {kind: bpe, vocab_size: 2000}; fit on data.train
//   model:
//     GPT: {context: 128, layers: 4, heads: 4, d_model: 128}     # vocab_size: the tokenizer's
//   train: {max_steps: 2000, batch_size: 32, learning_rate: 1e-3, ...}  # train::LmTrainOptions
//   mixed_precision: fp32
//
// LoRA fine-tuning (nn/lora.h) of train.init_from's model: a top-level section (PEFT's
// LoraConfig, whose r / lora_alpha / lora_dropout / target_modules these are)
//
//   lora: {rank: 8, alpha: 16, dropout: 0.05, targets: [c_attn, c_proj], merge: false}
//
// trains the adapters alone (rank >= 1, alpha > 0, dropout in [0, 1), targets non-empty, each
// matching some Linear of the blocks: attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_gate, mlp.c_proj);
// the output is an adapter file (train/lora_adapter.h), or with merge: true (or `train --merge`)
// a full model with the adapters folded into its weights. It needs train.init_from.
//
// Read once into typed values; unknown keys and wrong types are errors naming the file and the
// field path ("configs/gpt.yaml: train.batch_sise: unknown key").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "neutrino/nn/gpt.h"
#include "neutrino/train/lm_trainer.h"

namespace neutrino::cli {

struct LmTokenizerSpec {
  std::string kind = "char";  // char, bpe or unigram
  std::optional<int64_t> vocab_size;  // bpe/unigram: SentencePiece's default when unset
};

struct LmExperiment {
  std::string source;       // the config file
  std::string text;         // its text, saved with the model
  uint64_t seed = 1337;
  std::string train_data;   // data specs as JSON text (load_dataset_config's form)
  std::string validation_data;  // empty: no validation
  std::optional<LmTokenizerSpec> tokenizer;  // unset only with init_from (its tokenizer is reused)
  std::optional<nn::GPTOptions> model;       // vocab_size comes from the tokenizer
  train::LmTrainOptions train;
  std::string init_from;    // train.init_from: a language-model file to start from
  std::optional<nn::LoraOptions> lora;  // the lora section
  bool lora_merge = false;  // lora.merge: save a merged full model instead of the adapters
};

// Whether the config is a language-model one: model.GPT, or train.init_from. Reads the YAML only.
bool is_language_model_config(const std::string& yaml_path);
LmExperiment load_lm_experiment(const std::string& yaml_path);

}  // namespace neutrino::cli
