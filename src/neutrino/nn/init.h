// Weight initializers with Keras's names and formulas. fan_in/fan_out follow Keras: for a dense
// weight (out, in) they are in and out; for a conv weight (O, C, KH, KW), C*KH*KW and O*KH*KW.
#pragma once

#include <string>

#include "neutrino/tensor/tensor.h"

namespace neutrino::nn {

// Fills `weight` in place from the global generator. Names: glorot_uniform, glorot_normal,
// he_normal, he_uniform, lecun_normal, lecun_uniform, zeros, ones. ValueError for others.
void initialize(const Tensor& weight, const std::string& initializer);
bool is_initializer(const std::string& name);

}  // namespace neutrino::nn
