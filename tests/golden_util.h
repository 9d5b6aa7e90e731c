// Helpers shared by the layer-level golden tests (test_sequence_layers.cpp, test_transformer.cpp),
// which read tests/golden/data files written by tests/golden/generate_golden.py.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "neutrino/io/tensor_file.h"
#include "neutrino/ops/ops.h"

namespace neutrino::testing {

// One golden file's tensors, by name.
struct GoldenFile {
  std::string name;
  io::TensorFile file;
  const Tensor& at(const std::string& key) const {
    auto it = file.tensors.find(key);
    if (it == file.tensors.end()) throw std::runtime_error(name + " has no tensor " + key);
    return it->second;
  }
  bool has(const std::string& key) const { return file.tensors.count(key) > 0; }
  // A leaf input in `dtype`, requiring grad.
  Tensor leaf(const std::string& key, DType dtype) const {
    Tensor t = clone(cast(at(key), dtype)).detach();
    t.set_requires_grad(true);
    return t;
  }
};

// tests/golden/data/<file_name>, named `name` in messages.
inline GoldenFile load_golden_file(const std::string& name, const std::string& file_name) {
  return {name, io::load_tensors(std::string(NEUTRINO_GOLDEN_DIR) + "/" + file_name)};
}

// Compares got to want (any dtypes) elementwise within `atol`; returns the largest error.
inline double expect_close(const Tensor& got, const Tensor& want, double atol, const std::string& what) {
  if (got.shape() != want.shape()) {
    ADD_FAILURE() << what << ": shape " << got.shape_string() << " vs " << want.shape_string();
    return INFINITY;
  }
  const std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
  double worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - b[i]);
    if (!(err <= worst)) worst = err, worst_at = i;
  }
  EXPECT_LE(worst, atol) << what << ": worst at flat index " << worst_at << ": " << a[worst_at]
                         << " vs " << b[worst_at];
  return worst;
}

// Collects the largest error of one case and prints it (the report's figures):
// "[ <tag> ] <what>: max abs error ...".
struct ErrorLog {
  std::string what;
  std::string tag = "golden";
  double worst = 0;
  void add(double err) { worst = std::max(worst, err); }
  ~ErrorLog() { fmt::print("[ {} ] {}: max abs error {:.3g}\n", tag, what, worst); }
};

}  // namespace neutrino::testing
