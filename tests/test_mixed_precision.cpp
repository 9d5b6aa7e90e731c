// The bf16 mixed precision policy as users see it: Sequential::set_mixed_precision, the config's
// mixed_precision key, the model file's metadata, and --mixed-precision on the command line.
// Kernel accuracy under bf16 is tested in test_fast_ops.cpp.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "neutrino/cli/config.h"
#include "neutrino/neutrino.h"
#include "neutrino/train/model_file.h"
#include "test_util.h"

using namespace neutrino;
using namespace neutrino::nn;
using namespace neutrino::train;
namespace fs = std::filesystem;

namespace {
// Products of at least 4096 multiply-adds, so the bf16 matmul path is taken (smaller ones run
// the plain fp32 loop whatever the precision).
Sequential tiny_model() {
  return Sequential({Dense(64, "relu", {.input_shape = {16}}), Dense(64, "relu"), Dense(2)});
}

// Two linearly separable classes: the sign of the sum of the first four features.
std::pair<Tensor, Tensor> tiny_data() {
  manual_seed(3);
  const Tensor x = Tensor::normal({256, 16});
  const auto v = x.to_vector<float>();
  std::vector<int64_t> labels;
  for (int64_t r = 0; r < 256; ++r) {
    labels.push_back(v[r * 16] + v[r * 16 + 1] + v[r * 16 + 2] + v[r * 16 + 3] > 0);
  }
  return {x, Tensor::from_vector(labels, {256})};
}

Sequential compiled_tiny(Precision precision) {
  manual_seed(7);  // the same initial weights for every model
  Sequential model = tiny_model();
  model.compile(optim::Adam({.learning_rate = 0.01}), Loss("sparse_categorical_crossentropy", true),
                {"accuracy"});
  model.set_mixed_precision(precision);
  return model;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto u = a.to_vector<float>(), v = b.to_vector<float>();
  EXPECT_EQ(u.size(), v.size());
  double out = 0;
  for (size_t i = 0; i < u.size() && i < v.size(); ++i) {
    out = std::max(out, static_cast<double>(std::abs(u[i] - v[i])));
  }
  return out;
}

bool all_finite(const Tensor& t) {
  for (float v : t.to_vector<float>()) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

// Records the thread's precision at every training step.
class PrecisionSpy : public Callback {
 public:
  bool on_batch_end(Model&, int64_t, double) override {
    seen.push_back(compute_precision());
    return true;
  }
  std::string name() const override { return "PrecisionSpy"; }
  std::vector<Precision> seen;
};

const Precision kExpected = bf16_supported() ? Precision::kBFloat16 : Precision::kFloat32;

fs::path temp_dir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("neutrino_mp_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}
}  // namespace

TEST(MixedPrecision, DefaultIsFp32AndBf16ReportsWhatRuns) {
  Sequential model = tiny_model();
  EXPECT_EQ(model.mixed_precision(), Precision::kFloat32);
  EXPECT_EQ(model.mixed_precision_policy(), Precision::kFloat32);
  model.set_mixed_precision(Precision::kBFloat16);
  EXPECT_EQ(model.mixed_precision_policy(), Precision::kBFloat16);
  EXPECT_EQ(model.mixed_precision(), kExpected);
}

TEST(MixedPrecision, FitTrainsUnderBf16AndRestoresThePrecision) {
  const auto [x, y] = tiny_data();
  Sequential model = compiled_tiny(Precision::kBFloat16);
  auto spy = std::make_shared<PrecisionSpy>();
  const History history = model.fit(
      x, y, {.epochs = 15, .batch_size = 32, .verbose = 0, .callbacks = {spy}, .seed = 1});
  EXPECT_EQ(compute_precision(), Precision::kFloat32);  // the guard ended with fit
  ASSERT_FALSE(spy->seen.empty());
  for (Precision p : spy->seen) EXPECT_EQ(p, kExpected);
  const auto& loss = history.history.at("loss");
  EXPECT_LT(loss.back(), loss.front() * 0.5);
  const Tensor predictions = model.predict(x);
  EXPECT_TRUE(all_finite(predictions));
  EXPECT_GT(model.evaluate(x, y, {.verbose = 0})["accuracy"], 0.9);
}

TEST(MixedPrecision, Bf16PredictionsDifferSlightlyFromFp32) {
  const auto [x, y] = tiny_data();
  Sequential fp32 = compiled_tiny(Precision::kFloat32);
  Sequential bf16 = compiled_tiny(Precision::kBFloat16);
  const double diff = max_abs_diff(fp32.predict(x), bf16.predict(x));
  if (!bf16_supported()) {
    EXPECT_EQ(diff, 0.0);
    return;
  }
  EXPECT_GT(diff, 0.0) << "bf16 was not used";
  EXPECT_LT(diff, 0.1);  // 8 significant bits, fp32 accumulation
}

TEST(MixedPrecision, EvaluatePredictAndTrainOnBatchMatchAnExplicitGuard) {
  const auto [x, y] = tiny_data();
  Sequential policy = compiled_tiny(Precision::kBFloat16);
  Sequential guarded = compiled_tiny(Precision::kFloat32);
  PrecisionGuard outer(Precision::kBFloat16);  // a default model leaves the caller's guard alone
  EXPECT_EQ(max_abs_diff(policy.predict(x), guarded.predict(x)), 0.0);
  EXPECT_EQ(policy.evaluate(x, y, {.verbose = 0})["loss"],
            guarded.evaluate(x, y, {.verbose = 0})["loss"]);
  const Tensor xb = slice(x, 0, 0, 32), yb = slice(y, 0, 0, 32);
  EXPECT_EQ(policy.train_on_batch(xb, yb), guarded.train_on_batch(xb, yb));
  EXPECT_EQ(max_abs_diff(policy.predict(x), guarded.predict(x)), 0.0);
}

TEST(MixedPrecision, EvaluateUsesThePolicyWithoutAGuard) {
  const auto [x, y] = tiny_data();
  Sequential fp32 = compiled_tiny(Precision::kFloat32);
  Sequential bf16 = compiled_tiny(Precision::kBFloat16);
  const double a = fp32.evaluate(x, y, {.verbose = 0})["loss"];
  const double b = bf16.evaluate(x, y, {.verbose = 0})["loss"];
  EXPECT_TRUE(std::isfinite(b));
  if (bf16_supported()) {
    EXPECT_NE(a, b);
  } else {
    EXPECT_EQ(a, b);
  }
  EXPECT_NEAR(a, b, 0.05);
  EXPECT_EQ(compute_precision(), Precision::kFloat32);
}

TEST(MixedPrecision, SummaryShowsABf16Policy) {
  Sequential model = tiny_model();
  EXPECT_EQ(model.summary().find("Mixed precision"), std::string::npos);
  model.set_mixed_precision(Precision::kBFloat16);
  EXPECT_NE(model.summary().find(bf16_supported() ? "Mixed precision: bf16 compute, fp32 weights"
                                                  : "Mixed precision: bf16 requested, fp32 used"),
            std::string::npos)
      << model.summary();
}

TEST(MixedPrecisionConfig, ReadsTheKeyAndRejectsBadValues) {
  const fs::path dir = temp_dir("config");
  const std::string base =
      "data:\n  train: iris\nmodel:\n  input_shape: [4]\n  layers:\n    - Dense: {units: 3}\n";
  write(dir / "none.yaml", base);
  EXPECT_EQ(cli::load_experiment((dir / "none.yaml").string()).mixed_precision,
            Precision::kFloat32);
  write(dir / "bf16.yaml", base + "mixed_precision: bf16\n");
  EXPECT_EQ(cli::load_experiment((dir / "bf16.yaml").string()).mixed_precision,
            Precision::kBFloat16);
  write(dir / "fp32.yaml", base + "mixed_precision: fp32\n");
  EXPECT_EQ(cli::load_experiment((dir / "fp32.yaml").string()).mixed_precision,
            Precision::kFloat32);

  const std::string bad = (dir / "bad.yaml").string();
  write(bad, base + "mixed_precision: fp8\n");
  neutrino::testing::expect_error<ValueError>(
      [&] { cli::load_experiment(bad); },
      {bad, "mixed_precision: expected 'bf16' or 'fp32', got 'fp8'"});
  write(bad, base + "mixed_precision: 16\n");
  neutrino::testing::expect_error<ValueError>(
      [&] { cli::load_experiment(bad); },
      {bad, "mixed_precision: expected 'bf16' or 'fp32', got 16"});
  write(bad, base + "mixed_precison: bf16\n");  // a typo stays an unknown key
  neutrino::testing::expect_error<ValueError>([&] { cli::load_experiment(bad); },
                                              {bad, "mixed_precison"});
  fs::remove_all(dir);
}

TEST(MixedPrecisionConfig, ShippedBf16ConfigAsksForBf16) {
  const cli::Experiment ex = cli::load_experiment(std::string(NEUTRINO_SOURCE_DIR) +
                                                  "/configs/fashion_mnist_cnn_bf16.yaml");
  EXPECT_EQ(ex.mixed_precision, Precision::kBFloat16);
  const cli::Experiment fp32 =
      cli::load_experiment(std::string(NEUTRINO_SOURCE_DIR) + "/configs/fashion_mnist_cnn.yaml");
  EXPECT_EQ(fp32.mixed_precision, Precision::kFloat32);
  EXPECT_EQ(ex.model, fp32.model);  // the same network
}

TEST(MixedPrecisionModelFile, RoundTripsThePolicy) {
  const fs::path dir = temp_dir("file");
  const std::string path = (dir / "m.safetensors").string();
  Sequential bf16 = compiled_tiny(Precision::kBFloat16);
  save_model(path, bf16);
  const LoadedModel loaded = load_model(path);
  EXPECT_EQ(loaded.model.mixed_precision_policy(), Precision::kBFloat16);
  EXPECT_EQ(loaded.info.extra.count("mixed_precision"), 0u);  // not carried twice
  save_model(path, compiled_tiny(Precision::kFloat32));
  EXPECT_EQ(load_model(path).model.mixed_precision_policy(), Precision::kFloat32);

  // A file from before mixed precision: no key, so fp32.
  save_model(path, bf16);
  io::TensorFile file = io::load_tensors(path);
  ASSERT_EQ(file.metadata.at("mixed_precision"), "bf16");
  file.metadata.erase("mixed_precision");
  io::save_tensors(path, file.tensors, file.metadata);
  EXPECT_EQ(load_model(path).model.mixed_precision_policy(), Precision::kFloat32);

  file.metadata["mixed_precision"] = "fp8";
  io::save_tensors(path, file.tensors, file.metadata);
  neutrino::testing::expect_error<IOError>([&] { load_model(path); }, {path, "fp8"});
  fs::remove_all(dir);
}

using neutrino::testing::CliResult;
using neutrino::testing::run_cli;

TEST(MixedPrecisionCli, ConfigKeyAndFlagReachTheModelFile) {
  const fs::path dir = temp_dir("cli");
  const std::string csv = std::string(NEUTRINO_SOURCE_DIR) + "/configs/data/xor.csv";
  const std::string config =
      "seed: 42\ndata:\n  train: {csv: " + csv +
      ", label: y}\nmodel:\n  input_shape: [2]\n"
      "  layers:\n    - Dense: {units: 3, activation: sigmoid}\n"
      "    - Dense: {units: 1, activation: sigmoid}\n"
      "compile:\n  optimizer: {adam: {learning_rate: 0.1}}\n  loss: binary_crossentropy\n"
      "  metrics: [accuracy]\nfit:\n  epochs: 20\n  batch_size: 4\n  verbose: 0\n";
  write(dir / "bf16.yaml", config + "mixed_precision: bf16\n");
  const std::string model = (dir / "m.safetensors").string();
  const std::string yaml = (dir / "bf16.yaml").string();

  CliResult train = run_cli("train " + yaml + " -o " + model);
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_EQ(io::load_tensors(model).metadata.at("mixed_precision"), "bf16");
  CliResult summary = run_cli("summary " + model);
  EXPECT_NE(summary.output.find("Mixed precision: bf16"), std::string::npos) << summary.output;
  CliResult eval = run_cli("eval " + model + " --data " + csv + " --json");
  EXPECT_EQ(eval.code, 0) << eval.output;
  EXPECT_EQ(run_cli("eval " + model + " --data " + csv + " --mixed-precision fp32").code, 0);
  write(dir / "in.csv", "x1,x2\n0,1\n");
  const std::string input = " --input " + (dir / "in.csv").string();
  EXPECT_EQ(run_cli("predict " + model + input + " --mixed-precision bf16").code, 0);

  train = run_cli("train " + yaml + " -o " + model + " --mixed-precision fp32");
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_EQ(io::load_tensors(model).metadata.at("mixed_precision"), "fp32");

  // A bad flag is a usage error naming it; a bad config value names the key.
  CliResult bad_flag = run_cli("predict " + model + input + " --mixed-precision fp8");
  EXPECT_EQ(bad_flag.code, 2) << bad_flag.output;
  EXPECT_NE(bad_flag.output.find("--mixed-precision"), std::string::npos) << bad_flag.output;
  write(dir / "fp8.yaml", config + "mixed_precision: fp8\n");
  CliResult bad_key = run_cli("train " + (dir / "fp8.yaml").string() + " -o " + model);
  EXPECT_EQ(bad_key.code, 1) << bad_key.output;
  EXPECT_NE(bad_key.output.find("mixed_precision: expected 'bf16' or 'fp32', got 'fp8'"),
            std::string::npos)
      << bad_key.output;
  fs::remove_all(dir);
}
