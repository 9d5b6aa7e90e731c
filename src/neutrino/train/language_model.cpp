#include "neutrino/train/language_model.h"

#include <algorithm>
#include <cstring>

#include "neutrino/core/error.h"
#include "neutrino/io/config_reader.h"

namespace neutrino::train {

using nlohmann::json;

namespace {

bool same_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  return x == y;
}

}  // namespace

std::string language_model_architecture(const nn::GPTOptions& options) {
  return nn::gpt_architecture_json(options);
}

bool is_language_model_file(const std::string& path) {
  const io::ModelFile file = io::read_model_file(path, io::ModelFileKind::kModel);
  return nn::gpt_options_of_architecture(file.architecture, path).has_value();
}

void save_language_model(const std::string& path, const nn::GPT& model, const io::ModelInfo& info) {
  NEUTRINO_CHECK_VALUE(!model.lora_options().has_value(),
                       "{}: the model has LoRA adapters: merge them (GPT::merge_lora) or save them "
                       "alone (train::save_lora_adapter)", path);
  io::ModelFile file{.architecture = language_model_architecture(model.options()),
                     .info = info,
                     .weights = model.state_dict()};
  io::write_model_file(path, file, io::ModelFileKind::kModel);
}

LoadedLanguageModel load_language_model(const std::string& path) {
  io::ModelFile file = io::read_model_file(path, io::ModelFileKind::kModel);
  const auto options = nn::gpt_options_of_architecture(file.architecture, path);
  if (!options.has_value()) {
    const json j = io::parse_json(file.architecture, path + ": architecture");
    NEUTRINO_CHECK_VALUE(!j.is_object() || j.value("class_name", std::string()) != "LoraAdapter",
                         "{} is a LoRA adapter, not a language model: give it with its base "
                         "model (neutrino generate BASE --adapter {})", path, path);
  }
  NEUTRINO_CHECK_VALUE(options.has_value(),
                       "{} is not a language model (its architecture is not a GPT)", path);
  auto model = std::make_shared<nn::GPT>(*options);
  try {
    model->load_state_dict(file.weights);
  } catch (const Error& e) {
    throw IOError(fmt::format("{}: {}", path, e.what()));
  }
  model->eval();
  return {std::move(model), std::move(file.info)};
}

std::map<std::string, Tensor> adapt_imported_state(const nn::GPTOptions& options,
                                                   std::map<std::string, Tensor> state,
                                                   const std::string& path) {
  // nanoGPT (without flash) and GPT-2 keep a causal-mask buffer per block; it is no weight.
  for (auto it = state.begin(); it != state.end();) {
    const std::string& name = it->first;
    const bool mask_buffer = name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias");
    it = mask_buffer ? state.erase(it) : std::next(it);
  }
  if (options.tie_embeddings) {
    const auto head = state.find("lm_head.weight");
    const auto wte = state.find("transformer.wte.weight");
    if (head != state.end() && wte != state.end()) {
      NEUTRINO_CHECK_VALUE(same_values(head->second, wte->second),
                           "{}: lm_head.weight differs from transformer.wte.weight, but the config "
                           "ties them (set tie_embeddings: false)", path);
      state.erase(head);
    }
  }
  // Weights are float32 here; PyTorch files may hold float16, bfloat16 or float64.
  for (auto& [name, t] : state) {
    NEUTRINO_CHECK_VALUE(is_floating(t.dtype()), "{}: {} is {}, not a floating-point tensor", path,
                         name, dtype_name(t.dtype()));
    if (t.dtype() != DType::kFloat32) {
      Tensor f = Tensor::empty(t.shape(), DType::kFloat32);
      f.copy_(t);
      t = f;
    }
  }
  return state;
}

}  // namespace neutrino::train
