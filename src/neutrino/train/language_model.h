// Language-model files: a GPT's options as the architecture ({"class_name": "GPT", "config":
// {...}}), its state_dict under nanoGPT's names, and the metadata beside it (the tokenizer's bytes
// in info.extra["tokenizer"], base64, so generate and serve can turn text into ids and back; the
// training config and history). The same container as every other model file (io/model_file.h).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "neutrino/io/model_file.h"
#include "neutrino/nn/gpt.h"

namespace neutrino::train {

// True when the file's architecture is a GPT (without reading the weights).
bool is_language_model_file(const std::string& path);

// Writes atomically; the previous file survives any failure.
void save_language_model(const std::string& path, const nn::GPT& model,
                         const io::ModelInfo& info = {});

struct LoadedLanguageModel {
  std::shared_ptr<nn::GPT> model;  // in evaluation mode
  io::ModelInfo info;
};
// Errors name the file: not a GPT file ("... is not a language model"), options out of range,
// missing or unexpected weights (all listed), wrong shapes, non-finite values.
LoadedLanguageModel load_language_model(const std::string& path);

// The architecture JSON of a GPT model file.
std::string language_model_architecture(const nn::GPTOptions& options);

// A state dict from PyTorch (nanoGPT / GPT-2 names) made to fit `options`: with tied embeddings
// an lm_head.weight equal to wte is dropped (PyTorch's state_dict lists a tied weight twice) and
// one that differs is an error; nanoGPT's attn.bias causal-mask buffers are dropped. Anything
// else that does not match is an error listing every missing and unexpected name.
std::map<std::string, Tensor> adapt_imported_state(const nn::GPTOptions& options,
                                                   std::map<std::string, Tensor> state,
                                                   const std::string& path);

}  // namespace neutrino::train
