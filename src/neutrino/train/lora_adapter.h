// LoRA adapter files: a GPT's adapters alone (nn::GPT::lora_state, a few hundred KB where the
// model is many MB), as PEFT's adapter_model.safetensors + adapter_config.json in one file, the
// same container as model files (io/model_file.h). Its architecture is
//
//   {"class_name": "LoraAdapter", "config": {"rank": 8, "alpha": 16, "dropout": 0.05,
//    "targets": ["c_attn"]}, "base": {"class_name": "GPT", "config": {...}}}
//
// and info.extra holds "base_model" (the path it was trained from, as given) and "base_checksum"
// (io::tensors_checksum of the base's weights), so a different base is caught: another
// architecture is an error, the same one with other weights a warning (BaseCheck).
#pragma once

#include <map>
#include <string>

#include "neutrino/io/model_file.h"
#include "neutrino/nn/gpt.h"

namespace neutrino::train {

// The model must have LoRA enabled; `info.extra` may carry the base model's path as "base_model"
// and anything else (training config, history). Writes atomically.
void save_lora_adapter(const std::string& path, const nn::GPT& model, io::ModelInfo info = {});

struct LoraAdapterFile {
  nn::LoraOptions options;
  nn::GPTOptions base;                     // the architecture it was trained on
  std::map<std::string, Tensor> weights;   // "transformer.h.0.attn.c_attn.lora_A.weight", ...
  io::ModelInfo info;
};
// True when the file's architecture is a LoraAdapter (without reading the weights).
bool is_lora_adapter_file(const std::string& path);
// Errors (IOError) name the file: another kind of model file, broken options.
LoraAdapterFile read_lora_adapter(const std::string& path);

// Whether the base given is the one the adapter was trained on, as far as its weights tell.
enum class BaseCheck { kSameWeights, kOtherWeights, kUnknown };
// Enables LoRA on `model` (an ordinary GPT: the base) with the file's options and loads its
// tensors. A base of another architecture is a ValueError naming `path` and every option that
// differs; the same architecture with other weights gives kOtherWeights.
BaseCheck apply_lora_adapter(nn::GPT& model, const LoraAdapterFile& adapter, const std::string& path);

// The base model's weights checksum as the adapter file stores it.
std::string base_weights_checksum(const nn::GPT& model);

}  // namespace neutrino::train
