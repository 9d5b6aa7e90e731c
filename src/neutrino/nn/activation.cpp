#include "neutrino/nn/activation.h"

#include <array>

#include "neutrino/ops/ops.h"

namespace neutrino::nn {

namespace {
constexpr std::array<const char*, 12> kNames = {"",        "linear",     "relu",      "sigmoid",
                                                "tanh",    "softmax",    "log_softmax", "gelu",
                                                "leaky_relu", "softplus", "silu",      "swish"};
}

void check_activation(const std::string& name) {
  for (const char* known : kNames) {
    if (name == known) return;
  }
  throw ValueError(fmt::format(
      "unknown activation '{}' (known: linear, relu, sigmoid, tanh, softmax, log_softmax, gelu, "
      "leaky_relu, softplus, silu, swish)",
      name));
}

Tensor apply_activation(const std::string& name, const Tensor& x) {
  if (name.empty() || name == "linear") return x;
  if (name == "relu") return relu(x);
  if (name == "sigmoid") return sigmoid(x);
  if (name == "tanh") return tanh(x);
  if (name == "softmax") return softmax(x, -1);
  if (name == "log_softmax") return log_softmax(x, -1);
  if (name == "gelu") return gelu(x);
  if (name == "leaky_relu") return leaky_relu(x, 0.2);  // Keras's default slope
  if (name == "softplus") return softplus(x);
  if (name == "silu" || name == "swish") return mul(x, sigmoid(x));
  check_activation(name);
  return x;
}

}  // namespace neutrino::nn
