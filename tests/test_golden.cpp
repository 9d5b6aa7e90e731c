// Golden tests: every op-table case's outputs and input gradients against PyTorch 1.13, from files
// written by tests/golden/generate_golden.py (which reads the same table, tests/op_table.json); and
// ten training steps of an MLP and a CNN against torch.optim.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "neutrino/neutrino.h"
#include "op_table.h"

using namespace neutrino;
using json = nlohmann::json;

namespace {

const std::string kGoldenDir = NEUTRINO_GOLDEN_DIR;

struct Comparison {
  double max_abs = 0, max_rel = 0;
  bool ok = true;
  std::string where;
};

// |a - b| <= atol + rtol * |b| elementwise, reporting the worst errors.
Comparison compare(const Tensor& got, const Tensor& want, double rtol, double atol) {
  Comparison c;
  if (got.shape() != want.shape()) {
    c.ok = false;
    c.where = "shape " + got.shape_string() + " vs " + want.shape_string();
    return c;
  }
  const std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - b[i]);
    c.max_abs = std::max(c.max_abs, err);
    c.max_rel = std::max(c.max_rel, err / std::max(std::abs(b[i]), 1e-12));
    if (!(err <= atol + rtol * std::abs(b[i]))) {
      if (c.ok) c.where = fmt::format("first mismatch at flat index {}: {} vs {}", i, a[i], b[i]);
      c.ok = false;
    }
  }
  return c;
}

// Loads the case's golden file: its inputs (floats in `dtype`, marked as the table says), the
// op's outputs and the gradients of sum_k sum(out_k * grad_out_k), all from PyTorch.
struct Golden {
  io::TensorFile file;
  std::vector<Tensor> inputs;
};

Golden load_golden(const neutrino::testing::OpCase& c, DType dtype) {
  Golden g{io::load_tensors(kGoldenDir + "/op_" + c.name + ".safetensors"), {}};
  EXPECT_EQ(g.file.metadata.at("op"), c.op);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Tensor t = g.file.tensors.at(fmt::format("in{}", i));
    if (is_floating(t.dtype())) {
      t = clone(cast(t, dtype)).detach();
      if (c.inputs[i].grad) t.set_requires_grad(true);
    }
    g.inputs.push_back(t);
  }
  return g;
}

void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what) {
  const Comparison c = compare(got, want, rtol, atol);
  EXPECT_TRUE(c.ok) << what << ": " << c.where << " (max abs " << c.max_abs << ", max rel "
                    << c.max_rel << ")";
}

void check_golden(const neutrino::testing::OpCase& c, DType dtype, double rtol, double atol) {
  SCOPED_TRACE(fmt::format("{} in {}", c.name, dtype_name(dtype)));
  Golden g = load_golden(c, dtype);
  const std::vector<Tensor> outs = neutrino::testing::run_op(c, g.inputs, dtype);
  Tensor loss;
  for (size_t k = 0; k < outs.size(); ++k) {
    expect_close(outs[k], g.file.tensors.at(fmt::format("out{}", k)), rtol, atol,
                 fmt::format("output {}", k));
    auto grad_out = g.file.tensors.find(fmt::format("grad_out{}", k));
    if (grad_out == g.file.tensors.end()) continue;
    const Tensor term = sum(mul(outs[k], cast(grad_out->second, dtype)));
    loss = loss.defined() ? add(loss, term) : term;
  }
  EXPECT_FALSE(g.file.tensors.count(fmt::format("out{}", outs.size())))
      << "PyTorch gave more outputs than " << outs.size();
  if (loss.defined()) backward(loss);
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    auto want = g.file.tensors.find(fmt::format("grad_in{}", i));
    if (want != g.file.tensors.end()) {
      ASSERT_TRUE(g.inputs[i].grad().defined()) << "no gradient for input " << i;
      expect_close(g.inputs[i].grad(), want->second, rtol, atol,
                   fmt::format("grad of input {}", i));
    }
    // Inputs the op updates in place (batch_norm's running statistics).
    auto after = g.file.tensors.find(fmt::format("in{}_after", i));
    if (after != g.file.tensors.end()) {
      expect_close(g.inputs[i], after->second, rtol, atol, fmt::format("input {} after the op", i));
    }
  }
  // Without a graph, inference paths run (oneDNN's inference primitives, the fused first-layer
  // conv + pool): the same outputs.
  Golden fresh = load_golden(c, dtype);
  NoGradGuard no_grad;
  const std::vector<Tensor> inferred = neutrino::testing::run_op(c, fresh.inputs, dtype);
  for (size_t k = 0; k < inferred.size(); ++k) {
    expect_close(inferred[k], g.file.tensors.at(fmt::format("out{}", k)), rtol, atol,
                 fmt::format("output {} without a graph", k));
  }
}

}  // namespace

class OpTableGolden : public ::testing::TestWithParam<neutrino::testing::OpCase> {};

// Every op-table case with the "golden" check, in float64 (to 1e-9) and float32 (to 2e-4).
TEST_P(OpTableGolden, MatchesPyTorch) {
  check_golden(GetParam(), DType::kFloat64, 1e-9, 1e-10);
  check_golden(GetParam(), DType::kFloat32, 2e-4, 2e-5);
}

INSTANTIATE_TEST_SUITE_P(OpTable, OpTableGolden,
                         ::testing::ValuesIn(neutrino::testing::op_cases_with("golden")),
                         neutrino::testing::CaseName());

// The data folder holds a file for each golden case and nothing else: a renamed or removed case
// leaves no stale file behind, and a new one is not forgotten by the generator.
TEST(OpTableGoldenFiles, OneFilePerGoldenCase) {
  std::set<std::string> want, have;
  for (const auto& c : neutrino::testing::op_cases_with("golden"))
    want.insert("op_" + c.name + ".safetensors");
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("op_")) have.insert(name);
  }
  for (const auto& name : want)
    EXPECT_TRUE(have.count(name)) << name << " is missing: run tests/golden/generate_golden.py";
  for (const auto& name : have)
    EXPECT_TRUE(want.count(name)) << name << " has no case in tests/op_table.json";
  EXPECT_GE(want.size(), 150u);
}

// ---- ten training steps against torch.optim ------------------------------------------------

namespace {
train::Sequential make_golden_model(const std::string& kind) {
  using namespace nn;
  if (kind == "mlp") {
    return train::Sequential({Dense(16, "relu", {.input_shape = {12}, .name = "fc1"}),
                              Dense(3, {.name = "fc2"})});
  }
  return train::Sequential({Conv2D(4, 3, {.input_shape = {1, 8, 8}, .name = "conv1",
                                          .padding = "same", .activation = "relu"}),
                            MaxPooling2D(2), Flatten(), Dense(3, {.name = "fc1"})});
}

void check_training(const std::string& kind, const std::string& opt) {
  const std::string path = kGoldenDir + "/train_" + kind + "_" + opt + ".safetensors";
  SCOPED_TRACE(path);
  const io::TensorFile file = io::load_tensors(path);
  const json attrs = json::parse(file.metadata.at("attrs"));
  train::Sequential model = make_golden_model(kind);
  model.load_state_dict(
      [&] {
        std::map<std::string, Tensor> initial;
        for (const auto& [name, t] : file.tensors) {
          if (name.find('.') != std::string::npos && !name.starts_with("final.")) initial[name] = t;
        }
        return initial;
      }());
  if (opt == "sgd") {
    model.compile(optim::SGD({.learning_rate = attrs["lr"].get<double>(),
                              .momentum = attrs["momentum"].get<double>()}),
                  nn::Loss("sparse_categorical_crossentropy", true));
  } else {
    model.compile(optim::Adam({.learning_rate = attrs["lr"].get<double>(),
                               .beta_1 = attrs["betas"][0].get<double>(),
                               .beta_2 = attrs["betas"][1].get<double>(),
                               .epsilon = attrs["eps"].get<double>()}),
                  nn::Loss("sparse_categorical_crossentropy", true));
  }
  const std::vector<double> losses = file.tensors.at("losses").to_vector<double>();
  for (int step = 0; step < 10; ++step) {
    const double loss = model.train_on_batch(file.tensors.at(fmt::format("x{}", step)),
                                             file.tensors.at(fmt::format("y{}", step)));
    EXPECT_NEAR(loss, losses[step], 1e-4 * std::abs(losses[step])) << "step " << step;
  }
  for (const auto& [name, param] : model.state_dict()) {
    const Comparison c = compare(param, file.tensors.at("final." + name), 1e-4, 1e-5);
    EXPECT_TRUE(c.ok) << name << " after 10 steps: " << c.where << " (max abs " << c.max_abs << ")";
  }
}
}  // namespace

TEST(GoldenTraining, MlpSgdMomentumMatchesPyTorch) { check_training("mlp", "sgd"); }
TEST(GoldenTraining, MlpAdamMatchesPyTorch) { check_training("mlp", "adam"); }
TEST(GoldenTraining, CnnSgdMomentumMatchesPyTorch) { check_training("cnn", "sgd"); }
TEST(GoldenTraining, CnnAdamMatchesPyTorch) { check_training("cnn", "adam"); }
