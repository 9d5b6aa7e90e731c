#include "neutrino/nn/init.h"

#include <algorithm>
#include <cmath>
#include <vector>

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
// Keras's orthogonal initializer (gain 1): a normal matrix made orthonormal by Gram-Schmidt (the
// Q of its QR with R's diagonal positive, as Keras's sign fix), over the taller of it and its
// transpose; dims beyond the first fold into the columns.
void orthogonal(const Tensor& w) {
  Generator& gen = global_generator();
  const int64_t rows = w.dim() == 0 ? 1 : w.size(0), cols = w.numel() / std::max<int64_t>(rows, 1);
  const bool transposed = rows < cols;
  const int64_t tall = transposed ? cols : rows, narrow = transposed ? rows : cols;
  std::vector<double> q(static_cast<size_t>(tall * narrow));  // column j at q[j * tall ..]
  for (double& v : q) v = gen.normal();
  for (int64_t j = 0; j < narrow; ++j) {
    double* col = q.data() + j * tall;
    for (int pass = 0; pass < 2; ++pass) {  // twice: Gram-Schmidt's rounding error, re-orthogonalized
      for (int64_t k = 0; k < j; ++k) {
        const double* prev = q.data() + k * tall;
        double dot = 0;
        for (int64_t i = 0; i < tall; ++i) dot += col[i] * prev[i];
        for (int64_t i = 0; i < tall; ++i) col[i] -= dot * prev[i];
      }
    }
    double norm = 0;
    for (int64_t i = 0; i < tall; ++i) norm += col[i] * col[i];
    norm = std::sqrt(norm);
    for (int64_t i = 0; i < tall; ++i) col[i] /= norm;
  }
  dispatch_float(w.dtype(), "initialize", [&]<class T>() {
    T* p = w.data<T>();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        // w[r, c] is column c of the tall matrix (transposed) or column c's row r.
        p[r * cols + c] = static_cast<T>(transposed ? q[r * tall + c] : q[c * tall + r]);
      }
    }
  });
}
}  // namespace

bool is_initializer(const std::string& name) {
  for (const char* known : {"glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
                            "lecun_normal", "lecun_uniform", "orthogonal", "zeros", "ones"}) {
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
  } else if (initializer == "orthogonal") {
    orthogonal(weight);
  } else {
    throw ValueError(fmt::format(
        "unknown initializer '{}' (known: glorot_uniform, glorot_normal, he_normal, he_uniform, "
        "lecun_normal, lecun_uniform, orthogonal, zeros, ones)",
        initializer));
  }
}

}  // namespace neutrino::nn
