// The training workflow: model files, checkpoints and exact resume, callbacks, schedules, and
// layer configs with error paths.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "neutrino/neutrino.h"
#include "test_util.h"
#include "neutrino/nn/layer_config.h"
#include "neutrino/train/model_file.h"

using namespace neutrino;
using namespace neutrino::nn;
using namespace neutrino::train;
namespace fs = std::filesystem;

namespace {
using neutrino::testing::flat_weights;
fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("neutrino_workflow_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A small noisy two-class problem.
std::pair<Tensor, Tensor> blobs(int64_t n, uint64_t seed) {
  manual_seed(seed);
  Tensor x = Tensor::normal({n, 4});
  std::vector<int64_t> labels(n);
  float* p = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    p[i * 4] += labels[i] ? 1.5f : -1.5f;
  }
  return {x, Tensor::from_vector(labels, {n})};
}

Sequential small_model() {
  return Sequential({Dense(8, "relu", {.input_shape = {4}}), Dropout(0.25), Dense(2, "softmax")});
}

}  // namespace

TEST(WorkflowModelFile, SaveLoadPredictIsBitIdentical) {
  const fs::path dir = temp_dir("save");
  auto [x, y] = blobs(64, 1);
  Sequential model({Conv2D(3, 3, {.input_shape = {1, 2, 2}, .padding = "same", .activation = "relu"}),
                    BatchNormalization(), Flatten(), Dense(2, "softmax")});
  model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
  const Tensor images = reshape(x, {64, 1, 2, 2});
  model.fit(images, y, {.epochs = 2, .batch_size = 16, .verbose = 0});
  save_model((dir / "m.safetensors").string(), model, {.class_names = {"left", "right"}});
  auto [loaded, info] = load_model((dir / "m.safetensors").string());
  EXPECT_EQ(info.class_names, (std::vector<std::string>{"left", "right"}));
  EXPECT_EQ(model.predict(images).to_vector<float>(), loaded.predict(images).to_vector<float>());
  EXPECT_EQ(model_to_json(model), model_to_json(loaded));
}

TEST(WorkflowModelFile, DamagedFilesAreRefused) {
  const fs::path dir = temp_dir("damaged");
  Sequential model = small_model();
  const std::string path = (dir / "m.safetensors").string();
  save_model(path, model);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // One flipped bit in the last weight byte: caught by the checksum.
  std::string flipped = bytes;
  flipped.back() ^= 0x01;
  std::ofstream(dir / "flipped.safetensors", std::ios::binary) << flipped;
  try {
    load_model((dir / "flipped.safetensors").string());
    FAIL() << "a bit flip went unnoticed";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "short.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  EXPECT_THROW(load_model((dir / "short.safetensors").string()), IOError);
  io::save_tensors((dir / "plain.safetensors").string(), {{"x", Tensor::ones({2})}});
  EXPECT_THROW(load_model((dir / "plain.safetensors").string()), IOError);
}

TEST(WorkflowCheckpoint, ResumedRunIsBitIdenticalToUninterruptedRun) {
  const fs::path dir = temp_dir("resume");
  auto [x, y] = blobs(96, 2);
  auto run = [&](int epochs, const std::string& checkpoint, const std::string& resume) {
    manual_seed(123);
    Sequential model = small_model();
    model.compile(optim::Adam({.learning_rate = 0.01}), "sparse_categorical_crossentropy", {"accuracy"});
    model.fit(x, y, {.epochs = epochs, .batch_size = 10, .validation_split = 0.2, .verbose = 0,
                     .callbacks = {std::make_shared<EarlyStopping>(EarlyStoppingOptions{.patience = 50})},
                     .checkpoint_path = checkpoint, .resume_from = resume});
    return model;
  };
  const Sequential straight = run(6, "", "");
  const std::string ckpt = (dir / "ckpt.safetensors").string();
  run(3, ckpt, "");  // "killed" after epoch 3
  const Sequential resumed = run(6, "", ckpt);
  EXPECT_EQ(flat_weights(straight), flat_weights(resumed));
  EXPECT_EQ(straight.optimizer().iterations(), resumed.optimizer().iterations());
}

TEST(WorkflowCheckpoint, KillDuringSaveNeverCorruptsTheFinalFile) {
  const fs::path dir = temp_dir("kill");
  const std::string path = (dir / "ckpt.safetensors").string();
  Sequential model({Dense(256, "relu", {.input_shape = {512}}), Dense(10)});
  save_model(path, model);
  for (int round = 0; round < 12; ++round) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (;;) save_model(path, model);  // killed at a random point
    }
    usleep(static_cast<useconds_t>(2000 + 1700 * round));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    // Whatever point the kill hit, the file under the final name is a whole, valid model.
    EXPECT_NO_THROW(load_model(path)) << "round " << round;
  }
}

TEST(WorkflowCallbacks, EarlyStoppingRestoresBestWeights) {
  auto [x, y] = blobs(64, 3);
  manual_seed(5);
  Sequential model = small_model();
  model.compile(optim::SGD({.learning_rate = 0.0}), "sparse_categorical_crossentropy", {"accuracy"});
  auto early = std::make_shared<EarlyStopping>(
      EarlyStoppingOptions{.monitor = "loss", .patience = 2, .restore_best_weights = true});
  const History h = model.fit(x, y, {.epochs = 20, .verbose = 0, .callbacks = {early}});
  // Learning rate 0: the loss never improves after epoch 1, so training stops after 1 + 2 + 1.
  EXPECT_EQ(h.epochs, 4);
  EXPECT_EQ(early->stopped_epoch(), 3);
  EXPECT_THROW(model.fit(x, y, {.epochs = 1, .verbose = 0,
                                .callbacks = {std::make_shared<EarlyStopping>(
                                    EarlyStoppingOptions{.monitor = "val_typo"})}}),
               ValueError);
}

TEST(WorkflowCallbacks, CheckpointLoggerSchedulerPlateau) {
  const fs::path dir = temp_dir("callbacks");
  auto [x, y] = blobs(64, 4);
  manual_seed(6);
  Sequential model = small_model();
  model.compile(optim::Adam({.learning_rate = 0.01}), "sparse_categorical_crossentropy", {"accuracy"});
  std::vector<double> seen_lr;
  auto scheduler = std::make_shared<LearningRateScheduler>([&](int epoch, double lr) {
    seen_lr.push_back(lr);
    return epoch < 2 ? 0.01 : 0.001;
  });
  auto plateau = std::make_shared<ReduceLROnPlateau>(
      ReduceLROnPlateauOptions{.monitor = "loss", .factor = 0.5, .patience = 1, .min_delta = 10.0});
  const std::string best = (dir / "best.safetensors").string();
  model.fit(x, y, {.epochs = 4, .validation_split = 0.25, .verbose = 0,
                   .callbacks = {std::make_shared<ModelCheckpoint>(best, ModelCheckpointOptions{.save_best_only = true}),
                                 std::make_shared<CSVLogger>((dir / "log.csv").string()), scheduler, plateau}});
  EXPECT_TRUE(fs::exists(best));
  EXPECT_NO_THROW(load_model(best));
  std::ifstream log(dir / "log.csv");
  std::string header, line;
  std::getline(log, header);
  EXPECT_EQ(header, "epoch,accuracy,loss,val_accuracy,val_loss");
  int rows = 0;
  while (std::getline(log, line)) ++rows;
  EXPECT_EQ(rows, 4);
  ASSERT_EQ(seen_lr.size(), 4u);
  // min_delta 10: only the first epoch counts as an improvement, so the plateau halves the rate
  // after the second, and the scheduler sees the halved value when the third starts.
  EXPECT_DOUBLE_EQ(seen_lr[1], 0.01);
  EXPECT_DOUBLE_EQ(seen_lr[2], 0.005);
}

TEST(WorkflowCallbacks, NanLossStopsBeforeTheUpdate) {
  Sequential model({Dense(1, {.input_shape = {1}})});
  model.compile("sgd", "mse");
  const Tensor x = reshape(Tensor::of({1, 2}), {2, 1});
  const Tensor y = reshape(Tensor::of({std::nan(""), 1}), {2, 1});
  const auto before = flat_weights(model);
  const History h = model.fit(x, y, {.epochs = 3, .shuffle = false, .verbose = 0,
                                     .callbacks = {std::make_shared<TerminateOnNaN>()}});
  EXPECT_TRUE(h.stopped_on_nan);
  EXPECT_EQ(flat_weights(model), before);
}

TEST(WorkflowSchedules, StepAndCosineDecay) {
  const auto step = step_decay(0.1, 0.5, 10);
  EXPECT_DOUBLE_EQ(step(0), 0.1);
  EXPECT_DOUBLE_EQ(step(9), 0.1);
  EXPECT_DOUBLE_EQ(step(10), 0.05);
  const auto cosine = cosine_decay(1.0, 100, 0.1, 10);
  EXPECT_DOUBLE_EQ(cosine(0), 0.1);
  EXPECT_DOUBLE_EQ(cosine(9), 1.0);
  EXPECT_NEAR(cosine(10 + 50), 0.55, 1e-12);
  EXPECT_NEAR(cosine(10 + 100), 0.1, 1e-12);
  EXPECT_NEAR(cosine(10000), 0.1, 1e-12);
  // A schedule drives the optimizer step by step.
  optim::SGD sgd({.learning_rate = 1.0});
  Tensor w = Tensor::ones({1}).set_requires_grad();
  sgd.attach({w});
  sgd.set_schedule(step_decay(0.1, 0.5, 1));
  for (int i = 0; i < 2; ++i) {
    w.set_grad(Tensor::ones({1}));
    sgd.step();
  }
  EXPECT_NEAR(w.item(), 1.0 - 0.1 - 0.05, 1e-7);
}

TEST(WorkflowLayerConfig, RoundTripAndErrorPaths) {
  const LayerPtr conv = layer_from_config(
      R"({"Conv2D": {"filters": 8, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}})",
      "model.layers[0]");
  EXPECT_EQ(conv->type_name(), "Conv2D");
  EXPECT_EQ(layer_from_config(layer_to_config(*conv), "x")->type_name(), "Conv2D");
  EXPECT_EQ(layer_from_config(R"("Flatten")", "model.layers[1]")->type_name(), "Flatten");
  auto error_of = [](const std::string& text) {
    try {
      layer_from_config(text, "model.layers[3]");
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"({"Dense": {}})").find("model.layers[3].Dense.units: missing"), std::string::npos);
  EXPECT_NE(error_of(R"({"Dense": {"units": "ten"}})").find("model.layers[3].Dense.units: expected an integer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"Dense": {"units": 3, "unitz": 4}})").find("unknown field 'unitz'"), std::string::npos);
  EXPECT_NE(error_of(R"({"Densse": {"units": 3}})").find("unknown layer 'Densse'"), std::string::npos);
  EXPECT_NE(error_of(R"({"Dense": {"units": 3, "activation": "relux"}})").find("model.layers[3].Dense"),
            std::string::npos);
}
