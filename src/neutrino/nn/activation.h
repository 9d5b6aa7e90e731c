// Activation functions by Keras name, for layers' `activation` options.
#pragma once

#include <string>

#include "neutrino/tensor/tensor.h"

namespace neutrino::nn {

// linear (or ""), relu, sigmoid, tanh, softmax, log_softmax, gelu, leaky_relu, softplus, silu
// (alias swish). ValueError names the unknown activation.
Tensor apply_activation(const std::string& name, const Tensor& x);
void check_activation(const std::string& name);

}  // namespace neutrino::nn
