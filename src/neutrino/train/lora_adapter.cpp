#include "neutrino/train/lora_adapter.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <vector>

#include "neutrino/core/error.h"
#include "neutrino/io/config_reader.h"

namespace neutrino::train {

using nlohmann::json;

namespace {

constexpr const char* kClassName = "LoraAdapter";

bool is_adapter_architecture(const json& j) {
  return j.is_object() && j.value("class_name", std::string()) == kClassName;
}

}  // namespace

std::string base_weights_checksum(const nn::GPT& model) {
  std::map<std::string, Tensor> base = model.state_dict();
  for (const auto& [name, t] : model.lora_state()) base.erase(name);
  return io::tensors_checksum(base);
}

void save_lora_adapter(const std::string& path, const nn::GPT& model, io::ModelInfo info) {
  NEUTRINO_CHECK_VALUE(model.lora_options().has_value(),
                       "{}: the model has no LoRA adapters to save", path);
  const json architecture = {
      {"class_name", kClassName},
      {"config", json::parse(nn::lora_options_to_json(*model.lora_options()))},
      {"base", json::parse(nn::gpt_architecture_json(model.options()))}};
  info.extra["base_checksum"] = base_weights_checksum(model);
  io::ModelFile file{.architecture = architecture.dump(), .info = std::move(info),
                     .weights = model.lora_state()};
  io::write_model_file(path, file, io::ModelFileKind::kModel);
}

bool is_lora_adapter_file(const std::string& path) {
  const io::ModelFile file = io::read_model_file(path, io::ModelFileKind::kModel);
  return is_adapter_architecture(io::parse_json(file.architecture, path + ": architecture"));
}

LoraAdapterFile read_lora_adapter(const std::string& path) {
  io::ModelFile file = io::read_model_file(path, io::ModelFileKind::kModel);
  const json j = io::parse_json(file.architecture, path + ": architecture");
  NEUTRINO_CHECK_IO(is_adapter_architecture(j),
                    "{} is not a LoRA adapter file (its architecture is not a LoraAdapter)", path);
  NEUTRINO_CHECK_IO(j.contains("config") && j.contains("base"),
                    "{}: architecture: expected config and base", path);
  LoraAdapterFile out;
  try {
    out.options = nn::lora_options_from_json(j["config"].dump(), path + ": architecture.config");
  } catch (const ValueError& e) {
    throw IOError(e.what());
  }
  const auto base = nn::gpt_options_of_architecture(j["base"].dump(), path + ": architecture.base");
  NEUTRINO_CHECK_IO(base.has_value(), "{}: architecture.base: expected a GPT architecture", path);
  out.base = *base;
  out.weights = std::move(file.weights);
  out.info = std::move(file.info);
  return out;
}

BaseCheck apply_lora_adapter(nn::GPT& model, const LoraAdapterFile& adapter, const std::string& path) {
  const json want = json::parse(nn::gpt_options_to_json(adapter.base));
  const json have = json::parse(nn::gpt_options_to_json(model.options()));
  std::vector<std::string> differences;
  for (const auto& [key, value] : want.items()) {
    if (have.value(key, json()) != value) {
      differences.push_back(fmt::format("{} {} (the base has {})", key, value.dump(),
                                        have.value(key, json()).dump()));
    }
  }
  NEUTRINO_CHECK_VALUE(differences.empty(),
                       "{}: the adapter was trained on another base model: {}", path,
                       fmt::join(differences, ", "));
  NEUTRINO_CHECK_VALUE(!model.lora_options().has_value(),
                       "{}: the base model already has LoRA adapters", path);
  const std::string base_checksum = base_weights_checksum(model);
  model.enable_lora(adapter.options);
  try {
    model.load_lora_state(adapter.weights);
  } catch (const Error& e) {
    model.merge_lora();  // B is still zero: this only removes the fresh adapters
    throw ValueError(fmt::format("{}: {}", path, e.what()));
  }
  const auto it = adapter.info.extra.find("base_checksum");
  if (it == adapter.info.extra.end()) return BaseCheck::kUnknown;
  return it->second == base_checksum ? BaseCheck::kSameWeights : BaseCheck::kOtherWeights;
}

}  // namespace neutrino::train
