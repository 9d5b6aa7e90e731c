#include "neutrino/nn/init.h"

#include <cmath>

#include "neutrino/core/random.h"

namespace neutrino::nn {

namespace {
std::pair<double, double> fans(const Tensor& w) {
  if (w.dim() < 2) {
    const double n = w.dim() == 1 ? static_cast<double>(w.size(0)) : 1.0;
    return {n, n};
  }
  double receptive = 1;
  for (int64_t d = 2; d < w.dim(); ++d) receptive *= static_cast<double>(w.size(d));
  return {static_cast<double>(w.size(1)) * receptive, static_cast<double>(w.size(0)) * receptive};
}

template <class Draw>
void fill_with(const Tensor& w, Draw draw) {
  dispatch_float(w.dtype(), "initialize", [&]<class T>() {
    T* p = w.data<T>();
    for (int64_t i = 0, n = w.numel(); i < n; ++i) p[i] = static_cast<T>(draw());
  });
}

// Keras's truncated normal: redraw beyond two standard deviations, with stddev corrected for the
// truncation (0.8796... is the stddev of a unit normal truncated to [-2, 2]).
void truncated_normal(const Tensor& w, double stddev) {
  Generator& gen = global_generator();
  const double scale = stddev / 0.87962566103423978;
  fill_with(w, [&] {
    double z = gen.normal();
    while (std::abs(z) > 2.0) z = gen.normal();
    return z * scale;
  });
}

void uniform(const Tensor& w, double limit) {
  Generator& gen = global_generator();
  fill_with(w, [&] { return (2.0 * gen.uniform() - 1.0) * limit; });
}
}  // namespace

bool is_initializer(const std::string& name) {
  for (const char* known : {"glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
                            "lecun_normal", "lecun_uniform", "zeros", "ones"}) {
    if (name == known) return true;
  }
  return false;
}

void initialize(const Tensor& weight, const std::string& initializer) {
  const auto [fan_in, fan_out] = fans(weight);
  if (initializer == "zeros") {
    weight.fill_(0);
  } else if (initializer == "ones") {
    weight.fill_(1);
  } else if (initializer == "glorot_uniform") {
    uniform(weight, std::sqrt(6.0 / (fan_in + fan_out)));
  } else if (initializer == "glorot_normal") {
    truncated_normal(weight, std::sqrt(2.0 / (fan_in + fan_out)));
  } else if (initializer == "he_normal") {
    truncated_normal(weight, std::sqrt(2.0 / fan_in));
  } else if (initializer == "he_uniform") {
    uniform(weight, std::sqrt(6.0 / fan_in));
  } else if (initializer == "lecun_normal") {
    truncated_normal(weight, std::sqrt(1.0 / fan_in));
  } else if (initializer == "lecun_uniform") {
    uniform(weight, std::sqrt(3.0 / fan_in));
  } else {
    throw ValueError(fmt::format(
        "unknown initializer '{}' (known: glorot_uniform, glorot_normal, he_normal, he_uniform, "
        "lecun_normal, lecun_uniform, zeros, ones)",
        initializer));
  }
}

}  // namespace neutrino::nn
