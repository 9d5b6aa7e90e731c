// Golden tests: every op's output and input gradients against PyTorch 1.13, from files written by
// tests/golden/generate_golden.py; and ten training steps of an MLP and a CNN against torch.optim.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "neutrino/neutrino.h"

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

std::vector<int64_t> ints(const json& j) { return j.get<std::vector<int64_t>>(); }

// Runs the named op on `in` (its float inputs already in the wanted dtype).
Tensor run_op(const std::string& op, const json& a, const std::vector<Tensor>& in) {
  using Unary = Tensor (*)(const Tensor&);
  static const std::map<std::string, Unary> unary = {
      {"neg", neg}, {"exp", exp}, {"log", log}, {"sqrt", sqrt}, {"abs", abs},
      {"relu", relu}, {"sigmoid", sigmoid}, {"tanh", tanh}};
  if (auto it = unary.find(op); it != unary.end()) return it->second(in[0]);
  if (op == "add") return add(in[0], in[1]);
  if (op == "sub") return sub(in[0], in[1]);
  if (op == "mul") return mul(in[0], in[1]);
  if (op == "div") return div(in[0], in[1]);
  if (op == "pow") return pow(in[0], a["exponent"].get<double>());
  if (op == "clamp") return clamp(in[0], a["min"].get<double>(), a["max"].get<double>());
  if (op == "leaky_relu") return leaky_relu(in[0], a["negative_slope"].get<double>());
  if (op == "gelu") return gelu(in[0], a["approximate"].get<std::string>());
  if (op == "softmax") return softmax(in[0], a["dim"].get<int64_t>());
  if (op == "log_softmax") return log_softmax(in[0], a["dim"].get<int64_t>());
  if (op == "matmul") return matmul(in[0], in[1]);
  if (op == "sum") return sum(in[0], ints(a["dims"]), a["keepdim"].get<bool>());
  if (op == "mean") return mean(in[0], ints(a["dims"]), a["keepdim"].get<bool>());
  if (op == "max") return max(in[0], ints(a["dims"]), a["keepdim"].get<bool>());
  if (op == "reshape") return reshape(in[0], ints(a["shape"]));
  if (op == "permute") return permute(in[0], ints(a["dims"]));
  if (op == "slice") {
    return slice(in[0], a["dim"].get<int64_t>(), a["start"].get<int64_t>(),
                 a["end"].get<int64_t>(), a["step"].get<int64_t>());
  }
  if (op == "concat") return concat(in, a["dim"].get<int64_t>());
  if (op == "embedding") return embedding(in[0], in[1]);
  if (op == "index_select") return index_select(in[0], a["dim"].get<int64_t>(), in[1]);
  if (op == "where") return where(in[0], in[1], in[2]);
  if (op == "masked_fill") return masked_fill(in[0], in[1], a["value"].get<double>());
  if (op == "conv2d") {
    const auto s = ints(a["stride"]), p = ints(a["padding"]), d = ints(a["dilation"]);
    Conv2dParams params{.stride_h = s[0], .stride_w = s[1], .pad_top = p[0], .pad_left = p[1],
                        .pad_bottom = p[0], .pad_right = p[1], .dilation_h = d[0],
                        .dilation_w = d[1], .groups = a["groups"].get<int64_t>()};
    return conv2d(in[0], in[1], in[2], params);
  }
  if (op == "max_pool2d" || op == "avg_pool2d") {
    const auto k = ints(a["kernel_size"]), s = ints(a["stride"]), p = ints(a["padding"]);
    Pool2dParams params{.kernel_h = k[0], .kernel_w = k[1], .stride_h = s[0], .stride_w = s[1],
                        .pad_top = p[0], .pad_left = p[1], .pad_bottom = p[0], .pad_right = p[1],
                        .count_include_pad = a.value("count_include_pad", true)};
    return op == "max_pool2d" ? max_pool2d(in[0], params) : avg_pool2d(in[0], params);
  }
  if (op == "batch_norm") {
    return batch_norm(in[0], in[1], in[2], in[3], in[4], a["training"].get<bool>(),
                      a["momentum"].get<double>(), a["eps"].get<double>());
  }
  if (op == "layer_norm") {
    return layer_norm(in[0], ints(a["normalized_shape"]), in[1], in[2], a["eps"].get<double>());
  }
  if (op == "mse") return nn::mean_squared_error(in[1], in[0]);
  if (op == "bce") return nn::binary_crossentropy(in[1], in[0]);
  if (op == "bce_with_logits") return nn::binary_crossentropy(in[1], in[0], true);
  if (op == "cross_entropy") return nn::sparse_categorical_crossentropy(in[1], in[0], true);
  if (op == "soft_cross_entropy") return nn::categorical_crossentropy(in[1], in[0], true);
  if (op == "nll") return nn::nll_loss(in[0], in[1]);
  throw std::runtime_error("golden: no runner for op " + op);
}

void check_op_file(const std::string& path, DType dtype, double rtol, double atol) {
  SCOPED_TRACE(path);
  const io::TensorFile file = io::load_tensors(path);
  const std::string op = file.metadata.at("op");
  const json attrs = json::parse(file.metadata.at("attrs"));
  std::vector<Tensor> inputs;
  // Running statistics are updated in place and are not differentiated.
  const bool stats_inputs = op == "batch_norm";
  for (int i = 0;; ++i) {
    auto it = file.tensors.find(fmt::format("in{}", i));
    if (it == file.tensors.end()) break;
    Tensor t = it->second;
    if (is_floating(t.dtype())) {
      t = t.to(dtype).clone().detach();
      if (!(stats_inputs && i >= 3)) t.set_requires_grad(true);
    }
    inputs.push_back(t);
  }
  const Tensor out = run_op(op, attrs, inputs);
  const Comparison c_out = compare(out, file.tensors.at("out"), rtol, atol);
  EXPECT_TRUE(c_out.ok) << op << " output: " << c_out.where << " (max abs " << c_out.max_abs
                        << ", max rel " << c_out.max_rel << ")";
  out.backward(file.tensors.at("grad_out").to(dtype));
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto want = file.tensors.find(fmt::format("grad_in{}", i));
    if (want == file.tensors.end()) continue;
    ASSERT_TRUE(inputs[i].grad().defined()) << op << ": no gradient for input " << i;
    const Comparison c = compare(inputs[i].grad(), want->second, rtol, atol);
    EXPECT_TRUE(c.ok) << op << " grad of input " << i << ": " << c.where << " (max abs "
                      << c.max_abs << ", max rel " << c.max_rel << ")";
  }
  for (const auto& [name, index] : {std::pair{"running_mean_after", 3}, {"running_var_after", 4}}) {
    auto want = file.tensors.find(name);
    if (want == file.tensors.end()) continue;
    const Comparison c = compare(inputs[index], want->second, rtol, atol);
    EXPECT_TRUE(c.ok) << op << " " << name << ": " << c.where;
  }
}

std::vector<std::string> golden_files(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(".safetensors")) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(GoldenOps, EveryOpMatchesPyTorchInFloat64) {
  const auto files = golden_files("op_");
  ASSERT_GE(files.size(), 70u) << "golden files missing from " << kGoldenDir;
  for (const auto& path : files) check_op_file(path, DType::kFloat64, 1e-9, 1e-10);
}

TEST(GoldenOps, EveryOpMatchesPyTorchInFloat32) {
  for (const auto& path : golden_files("op_")) check_op_file(path, DType::kFloat32, 2e-4, 2e-5);
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
