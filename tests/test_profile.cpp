// Per-layer profiling: autograd's profile scopes and backward sink, fit() filling a Profile, the
// table, and `neutrino train --profile`.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "neutrino/neutrino.h"
#include "test_util.h"

using namespace neutrino;
using namespace neutrino::nn;
using namespace neutrino::train;

namespace {
// 256 samples of 32 features in 4 classes; 8 steps per epoch at batch size 32.
std::pair<Tensor, Tensor> blobs() {
  const int64_t n = 256;
  Tensor x = Tensor::normal({n, 32}, 0, 1);
  std::vector<int64_t> labels(n);
  float* px = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 4;
    px[i * 32 + labels[i]] += 3.0f;
  }
  return {x, Tensor::from_vector(labels, {n})};
}

Sequential small_model() {
  return Sequential({Dense(64, "relu", {.input_shape = {32}}), Dropout(0.1), Dense(4, "softmax")});
}

double row_sum(const Profile& p) {
  double sum = p.loss.total_ms + p.optimizer.total_ms + p.other.total_ms;
  for (const ProfileRow& row : p.layers) sum += row.total_ms;
  return sum;
}
}  // namespace

TEST(ProfileAutograd, NodesRecordTheirScopeAndBackwardTimeGoesToIt) {
  Tensor a = Tensor::normal({64, 64}).set_requires_grad();
  Tensor b = Tensor::normal({64, 64}).set_requires_grad();
  EXPECT_EQ(profile_scope(), -1);
  Tensor h;
  {
    const ProfileScope scope(2);
    EXPECT_EQ(profile_scope(), 2);
    h = relu(matmul(a, b));
  }
  EXPECT_EQ(profile_scope(), -1);  // restored
  EXPECT_EQ(h.grad_fn()->profile_scope(), 2);
  const Tensor loss = sum(h);
  EXPECT_EQ(loss.grad_fn()->profile_scope(), -1);

  BackwardProfile sink;
  {
    const BackwardProfileGuard guard(&sink);
    backward(loss);
  }
  ASSERT_EQ(sink.scope_ns.size(), 3u);
  EXPECT_EQ(sink.scope_ns[0], 0);
  EXPECT_EQ(sink.scope_ns[1], 0);
  EXPECT_GT(sink.scope_ns[2], 0);
  EXPECT_GT(sink.unscoped_ns, 0);

  // Without a guard, backward records nowhere.
  const BackwardProfile before = sink;
  backward(sum(mul(a, b)));
  EXPECT_EQ(sink.unscoped_ns, before.unscoped_ns);
  EXPECT_EQ(sink.scope_ns, before.scope_ns);
}

TEST(ProfileSequential, OneRowPerLayerAndRowsAddUpToTheTotal) {
  manual_seed(7);
  const auto [x, y] = blobs();
  Sequential model = small_model();
  model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
  Profile profile;
  model.fit(x, y, {.epochs = 2, .batch_size = 32, .verbose = 0, .profile = &profile});
  EXPECT_EQ(profile.steps, 2 * 8 - profile.warmup_steps);
  ASSERT_EQ(profile.layers.size(), 3u);
  EXPECT_EQ(profile.layers[0].name, "dense");
  EXPECT_EQ(profile.layers[0].type, "Dense");
  EXPECT_EQ(profile.layers[0].output_shape, "(None, 64)");
  EXPECT_EQ(profile.layers[1].type, "Dropout");
  EXPECT_EQ(profile.layers[2].output_shape, "(None, 4)");
  for (const ProfileRow& row : profile.layers) {
    EXPECT_GE(row.forward_ms, 0) << row.name;
    EXPECT_GE(row.backward_ms, 0) << row.name;
    EXPECT_NEAR(row.total_ms, row.forward_ms + row.backward_ms, 1e-9) << row.name;
    if (row.type == "Dense") {
      EXPECT_GT(row.forward_ms, 0) << row.name;
      EXPECT_GT(row.backward_ms, 0) << row.name;
    }
  }
  EXPECT_EQ(profile.loss.type, "sparse_categorical_crossentropy");
  EXPECT_GT(profile.loss.forward_ms, 0);
  EXPECT_GT(profile.loss.backward_ms, 0);
  EXPECT_EQ(profile.optimizer.type, "adam");
  EXPECT_GT(profile.optimizer.total_ms, 0);
  EXPECT_GE(profile.other.total_ms, 0);
  EXPECT_GT(profile.total.total_ms, 0);
  EXPECT_LE(row_sum(profile) - profile.other.total_ms, profile.total.total_ms);
  EXPECT_NEAR(row_sum(profile), profile.total.total_ms, 1e-6 * profile.total.total_ms);
  EXPECT_NEAR(profile.total.percent, 100.0, 1e-9);

  const std::string table = format_profile(profile);
  for (const char* part : {"dense_1", "Dropout", "(None, 64)", "Fwd ms", "Bwd ms", "optimizer",
                           "total", "over 13 steps"}) {
    EXPECT_NE(table.find(part), std::string::npos) << part << " not in:\n" << table;
  }
  const auto parsed = nlohmann::json::parse(profile_json(profile));
  EXPECT_EQ(parsed.at("layers").size(), 3u);
  EXPECT_EQ(parsed.at("steps"), 13);
}

TEST(ProfileSequential, MaxStepsStopsTrainingEarly) {
  manual_seed(7);
  const auto [x, y] = blobs();
  Sequential model = small_model();
  model.compile("sgd", "sparse_categorical_crossentropy");
  Profile profile{.warmup_steps = 2, .max_steps = 4};
  ::testing::internal::CaptureStdout();
  const History history =
      model.fit(x, y, {.epochs = 50, .batch_size = 32, .verbose = 2, .profile = &profile});
  const std::string printed = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(history.epochs, 1);
  EXPECT_EQ(profile.steps, 4);
  // The progress line counts the 6 steps that ran, not the epoch's full length.
  const int64_t per_epoch = (x.size(0) + 31) / 32;
  ASSERT_GT(per_epoch, 6);
  EXPECT_NE(printed.find(fmt::format("6/{} - ", per_epoch)), std::string::npos) << printed;
}

TEST(ProfileSequential, ProfilingDoesNotChangeTheTrainedWeights) {
  auto train_once = [](bool profiled) {
    manual_seed(11);
    const auto [x, y] = blobs();
    Sequential model = small_model();
    model.compile("adam", "sparse_categorical_crossentropy");
    Profile profile;
    model.fit(x, y,
              {.epochs = 2,
               .batch_size = 32,
               .verbose = 0,
               .seed = 5,
               .profile = profiled ? &profile : nullptr});
    std::vector<float> weights;
    for (const Tensor& p : model.parameters()) {
      const auto values = p.to_vector<float>();
      weights.insert(weights.end(), values.begin(), values.end());
    }
    return weights;
  };
  EXPECT_EQ(train_once(false), train_once(true));
}

TEST(ProfileSequential, NoProfiledStepsSaysSo) {
  Profile profile;
  EXPECT_NE(format_profile(profile).find("no steps profiled"), std::string::npos);
}

namespace {
using neutrino::testing::CliResult;
using neutrino::testing::run_cli;

std::filesystem::path profile_config() {
  const auto dir =
      std::filesystem::temp_directory_path() / ("neutrino_profile_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string csv = std::string(NEUTRINO_SOURCE_DIR) + "/configs/data/xor.csv";
  std::ofstream(dir / "xor.yaml")
      << "seed: 1\ndata:\n  train: {csv: " << csv << ", label: y}\n  test: {csv: " << csv
      << ", label: y}\nmodel:\n  input_shape: [2]\n  layers:\n"
         "    - Dense: {units: 8, activation: relu}\n    - Dense: {units: 1, activation: sigmoid}\n"
         "compile:\n  optimizer: adam\n  loss: binary_crossentropy\n  metrics: [accuracy]\n"
         "fit:\n  epochs: 20\n  batch_size: 4\n  verbose: 0\n";
  return dir;
}
}  // namespace

TEST(ProfileCli, TrainProfilePrintsTheTable) {
  const auto dir = profile_config();
  const std::string base =
      "train " + (dir / "xor.yaml").string() + " -o " + (dir / "xor.safetensors").string();
  CliResult r = run_cli(base + " --profile");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* part : {"test: loss", "over 17 steps", "dense_1", "Dense", "(None, 8)",
                           "binary_crossentropy", "optimizer", "total"}) {
    EXPECT_NE(r.output.find(part), std::string::npos) << part << " not in:\n" << r.output;
  }

  r = run_cli(base + " --profile-steps 5 --epochs 1000 --json");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto parsed = nlohmann::json::parse(r.output);
  EXPECT_EQ(parsed.at("profile").at("steps"), 5);
  EXPECT_EQ(parsed.at("profile").at("layers").size(), 2u);
  EXPECT_FALSE(parsed.contains("accuracy"));  // --profile-steps skips the test

  EXPECT_EQ(run_cli(base + " --profile-steps 0").code, 2);  // usage
  std::filesystem::remove_all(dir);
}
