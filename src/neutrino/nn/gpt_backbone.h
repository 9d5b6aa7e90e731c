// GPTBackbone: a GPT (gpt.h) as a layer of a Keras-style model, for classifiers and encoders on
// top of a pre-trained language model (Keras-NLP's GPT2Backbone plus a pooling step, Hugging
// Face's GPT2ForSequenceClassification without its head). Input: token ids (T) per sample, 0 the
// padding at the end (the tokenize preprocessing step's form); output: one vector (d_model) per
// sample, pooled over the real tokens:
//   last: the hidden state of the last real token (the causal model has read the whole text);
//   mean: the mean of the real tokens' hidden states.
// Padding sits after the text, so causal attention keeps it out of every real token's state.
// Parameters keep the GPT's own names (transformer.wte.weight, ...), under the layer's name.
//
//   model:
//     input_shape: [128]
//     layers:
//       - GPTBackbone: {from_model: gpt_fortunes.safetensors, pooling: mean}
//       - Dense: {units: 6, activation: softmax}
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "neutrino/nn/gpt.h"
#include "neutrino/nn/layers.h"

namespace neutrino::io {
class ConfigReader;
}

namespace neutrino::nn {

struct GPTBackboneOptions {
  Shape input_shape = {};
  std::string name = "";
  std::string pooling = "last";  // "last" or "mean"
};

class GPTBackbone : public Layer {
 public:
  GPTBackbone(GPTOptions gpt, GPTBackboneOptions options = {});
  std::string type_name() const override { return "GPTBackbone"; }
  NEUTRINO_LAYER_CLONE(GPTBackbone)
  // (T) with T <= context -> (d_model).
  Shape output_shape(const Shape& input_shape) const override;
  WeightShapes weight_shapes(const Shape& input_shape) const override;
  const GPTOptions& gpt_options() const { return gpt_->options(); }
  const GPTBackboneOptions& options() const { return options_; }
  GPT& gpt() { return *gpt_; }

 protected:
  void build_weights(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override;

 private:
  std::shared_ptr<GPT> gpt_;
  GPTBackboneOptions options_;
};

// For layer_config.cpp. From a config: either `GPT: {options}` (random weights) or
// `from_model: PATH`, a language-model file whose architecture, and with `pretrained: true` (the
// default) its weights, the backbone takes; `pooling` beside either. Saved as `GPT: {options}`, so
// a trained model's file needs nothing else.
LayerPtr gpt_backbone_from_config(io::ConfigReader& r, const Shape& input_shape,
                                  const std::string& name);
// Writes the backbone's fields into `config`; false for any other layer.
bool gpt_backbone_to_config(const Layer& layer, nlohmann::json& config);

}  // namespace neutrino::nn
