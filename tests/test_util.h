// Assertions shared by the test files.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <unistd.h>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "neutrino/tensor/tensor.h"

namespace neutrino::testing {

// A fresh, empty directory under the system's temporary directory, named for the test and the
// process (ctest runs tests in parallel processes).
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("neutrino_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Asserts that `fn` throws E and that what() contains every string in `parts`.
template <class E, class Fn>
void expect_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    const std::string what = e.what();
    for (const auto& part : parts) {
      EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' not in: " << what;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// Asserts the tensor's values in C order, within `tol`.
inline void expect_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  const std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol) << "at " << i;
}

// Largest |a - b| relative to max(1, |b|), over tensors of one size (any dtypes).
inline double max_rel_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    worst = std::max(worst, std::abs(x[i] - y[i]) / std::max(1.0, std::abs(y[i])));
  }
  return worst;
}

// Runs build/bin/neutrino with `args` (shell syntax) and collects its exit code and output.
struct CliResult {
  int code;
  std::string output;  // stdout and stderr
};

// Runs a shell command, its stderr joined to its stdout: the exit code (128 + signal when killed).
inline CliResult run_shell(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  CliResult r{-1, ""};
  if (pipe == nullptr) return r;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) r.output += buffer.data();
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

inline CliResult run_cli(const std::string& args) {
  return run_shell(std::string(NEUTRINO_BIN_DIR) + "/neutrino " + args);
}

// Every parameter and buffer of a module (its state dict, in name order) as one float vector, for
// comparing two models' weights exactly.
template <class Model>
std::vector<float> flat_weights(const Model& model) {
  std::vector<float> out;
  for (const auto& [name, t] : model.state_dict()) {
    const std::vector<float> v = static_cast<const Tensor&>(t).to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// Makes every parameter of `module` hold `dtype`, in place: layers create float32 weights, and the
// float64 runs need float64 ones. The change is to the shared TensorImpl, so every holder of the
// tensor (a Bidirectional and its two directions, the layer's own member) sees it.
template <class M>
void set_dtype(const M& module, DType dtype) {
  for (const auto& [name, param] : module.named_parameters()) {
    const Tensor& p = param;
    if (p.dtype() == dtype) continue;
    const Tensor converted = densify(p.detach(), dtype);
    TensorImpl& impl = *p.impl();
    impl.storage = converted.impl()->storage;
    impl.strides = converted.strides();
    impl.offset = converted.offset();
    impl.dtype = dtype;
    impl.grad.reset();
  }
}

}  // namespace neutrino::testing
