// Configs of the Transformer layers (transformer.h), for layer_config.cpp. Internal: include only
// from .cpp files (it brings in nlohmann/json).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "neutrino/io/config_reader.h"
#include "neutrino/nn/layers.h"

namespace neutrino::nn {

// The layer for `type` from its options, or nullptr when `type` is not a Transformer layer.
LayerPtr transformer_layer_from_config(const std::string& type, io::ConfigReader& r,
                                       const Shape& input_shape, const std::string& name);
// Writes a Transformer layer's fields into `config`; false for any other layer.
bool transformer_layer_to_config(const Layer& layer, nlohmann::json& config);
// The lines of describe_layer_options() for these layers.
std::string describe_transformer_layer_options();

}  // namespace neutrino::nn
