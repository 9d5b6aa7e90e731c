// End-to-end behaviour of the Keras-style API: XOR learned, bin/xor runs, runs reproducible.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>

#include "neutrino/neutrino.h"

using namespace neutrino;
using namespace neutrino::nn;
using namespace neutrino::train;

namespace {
Sequential xor_model() {
  return Sequential({Dense(3, "sigmoid", {.input_shape = {2}}), Dense(1, "sigmoid")});
}
const Tensor kX = Tensor::of({{0, 0}, {0, 1}, {1, 0}, {1, 1}});
const Tensor kY = Tensor::of({0, 1, 1, 0});
}  // namespace

TEST(ModelXor, LearnsXorWithLargerLearningRate) {
  manual_seed(42);
  Sequential model = xor_model();
  model.compile(optim::Adam({.learning_rate = 0.1}), "binary_crossentropy", {"accuracy"});
  const History history = model.fit(kX, kY, {.epochs = 1000, .verbose = 0});
  const Scores scores = model.evaluate(kX, kY, {.verbose = 0});
  EXPECT_EQ(scores["accuracy"], 1.0);
  EXPECT_LT(scores["loss"], 0.1);
  EXPECT_EQ(history.history.at("loss").size(), 1000u);
  EXPECT_LT(history.history.at("loss").back(), history.history.at("loss").front());
}

TEST(ModelXor, KerasDefaultsDoNotLearnXorIn1000Epochs) {
  // Adam at 0.001 for 1000 full-batch epochs stays near chance, as PyTorch does (loss ~0.69).
  manual_seed(42);
  Sequential model = xor_model();
  model.compile("adam", "binary_crossentropy", {"accuracy"});
  model.fit(kX, kY, {.epochs = 1000, .verbose = 0});
  const Scores scores = model.evaluate(kX, kY, {.verbose = 0});
  EXPECT_NEAR(scores["loss"], 0.69, 0.03);
}

TEST(ModelXor, ExampleBinaryPrintsLossAndAccuracy) {
  const std::string command = std::string(NEUTRINO_BIN_DIR) + "/xor";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  ASSERT_NE(pipe, nullptr);
  std::array<char, 256> buffer{};
  std::string output;
  while (fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) output += buffer.data();
  double loss = -1, accuracy = -1;
  ASSERT_EQ(std::sscanf(output.c_str(), "loss: %lf, accuracy: %lf", &loss, &accuracy), 2) << output;
  EXPECT_GT(loss, 0.6);
  EXPECT_LT(loss, 0.75);
  EXPECT_GE(accuracy, 0.0);
  EXPECT_LE(accuracy, 1.0);
}

TEST(ModelReproducibility, SameSeedGivesBitIdenticalWeights) {
  auto train_once = [](uint64_t seed) {
    manual_seed(seed);
    Sequential model({Dense(8, "relu", {.input_shape = {2}}), Dropout(0.2), Dense(1, "sigmoid")});
    model.compile("adam", "binary_crossentropy", {"accuracy"});
    model.fit(kX, kY, {.epochs = 20, .batch_size = 2, .verbose = 0});
    std::vector<float> weights;
    for (const auto& [name, t] : model.state_dict()) {
      const auto v = t.to_vector<float>();
      weights.insert(weights.end(), v.begin(), v.end());
    }
    return weights;
  };
  EXPECT_EQ(train_once(7), train_once(7));
  EXPECT_NE(train_once(7), train_once(8));
}

TEST(ModelValidation, ValidationDataAndSplitReportValLoss) {
  manual_seed(1);
  Sequential model = xor_model();
  model.compile(optim::Adam({.learning_rate = 0.05}), "binary_crossentropy", {"accuracy"});
  const History h1 = model.fit(kX, kY, {.epochs = 3, .validation_data = std::pair{kX, kY}, .verbose = 0});
  EXPECT_EQ(h1.history.at("val_loss").size(), 3u);
  EXPECT_EQ(h1.history.at("val_accuracy").size(), 3u);
  const History h2 = model.fit(kX, kY, {.epochs = 2, .validation_split = 0.25, .verbose = 0});
  EXPECT_EQ(h2.history.at("val_loss").size(), 2u);
}

TEST(ModelErrors, BadArgumentsNameTheProblem) {
  Sequential model = xor_model();
  EXPECT_THROW(model.fit(kX, kY), ValueError);  // not compiled
  model.compile("adam", "binary_crossentropy", {"accuracy"});
  try {
    model.fit(Tensor::zeros({4, 3}), kY, {.verbose = 0});
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("expected 2 input features"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model.fit(kX, Tensor::zeros({3}), {.verbose = 0}), ShapeError);
  EXPECT_THROW(model.compile("adagrad_typo", "binary_crossentropy"), ValueError);
  EXPECT_THROW(model.compile("adam", "hinge_typo"), ValueError);
  EXPECT_THROW(model.compile("adam", "binary_crossentropy", {"accuracy_typo"}), ValueError);
}

TEST(ModelCnn, TrainsSmallCnnAndPrintsSummary) {
  manual_seed(3);
  // Two classes of 6x6 images: a bright left half or a bright right half.
  const int64_t n = 32;
  Tensor x = Tensor::normal({n, 1, 6, 6}, 0, 0.1);
  std::vector<int64_t> labels(n);
  float* px = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    for (int64_t r = 0; r < 6; ++r) {
      for (int64_t c = 0; c < 3; ++c) px[i * 36 + r * 6 + c + 3 * labels[i]] += 1.0f;
    }
  }
  const Tensor y = Tensor::from_vector(labels, {n});
  Sequential model({Conv2D(4, 3, {.input_shape = {1, 6, 6}, .padding = "same", .activation = "relu"}),
                    BatchNormalization(), MaxPooling2D(2), Flatten(), Dropout(0.1),
                    Dense(2, "softmax")});
  model.compile(optim::Adam({.learning_rate = 0.01}), "sparse_categorical_crossentropy", {"accuracy"});
  model.fit(x, y, {.epochs = 15, .batch_size = 8, .verbose = 0});
  EXPECT_EQ(model.evaluate(x, y, {.verbose = 0})["accuracy"], 1.0);
  const std::string summary = model.summary();
  EXPECT_NE(summary.find("conv2d (Conv2D)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("(None, 4, 6, 6)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("Non-trainable params: 8"), std::string::npos) << summary;
}
