// Layers to and from Keras-like configs, the one-key maps used by YAML configs and saved model
// files: {"Dense": {"units": 10, "activation": "softmax"}}. The JSON travels as text so this
// header stays light.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "neutrino/nn/layers.h"

namespace neutrino::nn {

// The layer's type and options as JSON text, including its name.
std::string layer_to_config(const Layer& layer);
// Builds a layer from a one-key map (or a bare type name) in JSON text. Errors name `path` and
// the field: "model.layers[3].Dense.units: missing required field".
// Every number is range-checked (kernel_size, strides, dilation_rate, pool_size within
// [1, kMaxWindow]; units, filters, input_shape within kMaxLayerElements).
LayerPtr layer_from_config(const std::string& json_text, const std::string& path);
LayerPtr layer_from_config(const nlohmann::json& config, const std::string& path);
// Every layer type with its options and their defaults, one line per type, from the same field
// tables the reader uses: "Dense(units): activation=\"\", use_bias=true, ...".
std::string describe_layer_options();

}  // namespace neutrino::nn
