// Keras-style layers, losses, optimizers and the Sequential model API.
#include <gtest/gtest.h>

#include "test_util.h"

#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "neutrino/neutrino.h"

using namespace neutrino;
using namespace neutrino::nn;
using namespace neutrino::train;
using namespace neutrino::optim;

namespace {

using neutrino::testing::expect_error;
using neutrino::testing::expect_values;

Tensor column(std::initializer_list<double> values) {
  return reshape(Tensor::of(values), {static_cast<int64_t>(values.size()), 1});
}

std::map<std::string, Shape> param_shapes(const Module& m) {
  std::map<std::string, Shape> out;
  for (const auto& [name, t] : m.named_parameters()) out[name] = t.shape();
  return out;
}

Tensor xor_x() { return Tensor::of({{0, 0}, {0, 1}, {1, 0}, {1, 1}}); }
Tensor xor_y() { return column({0, 1, 1, 0}); }

Sequential xor_model() {
  return Sequential({Dense(3, "sigmoid", {.input_shape = {2}}), Dense(1, "sigmoid")});
}

// A leaf parameter with a gradient set by hand.
Tensor param_with_grad(std::initializer_list<double> w, std::initializer_list<double> g) {
  Tensor p = Tensor::of(w, DType::kFloat64);
  p.set_requires_grad(true);
  p.set_grad(Tensor::of(g, DType::kFloat64));
  return p;
}

// ---- layers --------------------------------------------------------------------------------

TEST(LayersDense, GlorotUniformWeightsAndZeroBias) {
  manual_seed(3);
  Sequential model({Dense(16, {.input_shape = {24}})});
  const auto state = model.state_dict();
  const Tensor w = state.at("dense.weight");
  EXPECT_EQ(w.shape(), (Shape{16, 24}));  // PyTorch layout (units, in)
  const double limit = std::sqrt(6.0 / (24 + 16));
  double max_abs = 0;
  for (double v : w.to_vector<double>()) {
    EXPECT_LE(std::abs(v), limit);
    max_abs = std::max(max_abs, std::abs(v));
  }
  EXPECT_GT(max_abs, 0.8 * limit);  // actually spread over the range
  expect_values(state.at("dense.bias"), std::vector<double>(16, 0.0));
  EXPECT_TRUE(w.requires_grad());
  // Forward: y = x W^T + b.
  Tensor x = Tensor::normal({5, 24});
  Tensor y = model(x);
  EXPECT_EQ(y.shape(), (Shape{5, 16}));
  expect_values(y, matmul(x, transpose(w, 0, 1)).to_vector<double>(), 1e-5);
}

TEST(LayersDense, ParameterNamesAndShapes) {
  Sequential model({Dense(4, {.input_shape = {3}}), Dense(2)});
  const auto shapes = param_shapes(model);
  ASSERT_EQ(shapes.size(), 4u);
  EXPECT_EQ(shapes.at("dense.weight"), (Shape{4, 3}));
  EXPECT_EQ(shapes.at("dense.bias"), (Shape{4}));
  EXPECT_EQ(shapes.at("dense_1.weight"), (Shape{2, 4}));
  EXPECT_EQ(shapes.at("dense_1.bias"), (Shape{2}));
  EXPECT_EQ(model.layers()[0]->name(), "dense");
  EXPECT_EQ(model.layers()[1]->name(), "dense_1");

  Sequential named({Dense(4, {.input_shape = {3}, .name = "fc1"}), Dense(2, {.name = "fc2", .use_bias = false})});
  const auto named_shapes = param_shapes(named);
  EXPECT_EQ(named_shapes.at("fc1.weight"), (Shape{4, 3}));
  EXPECT_EQ(named_shapes.at("fc2.weight"), (Shape{2, 4}));
  EXPECT_EQ(named_shapes.count("fc2.bias"), 0u);
}

TEST(LayersConv2D, WeightLayoutAndPadding) {
  manual_seed(4);
  Sequential model({Conv2D(4, 3, {.input_shape = {2, 7, 7}})});
  EXPECT_EQ(model.layers()[0]->name(), "conv2d");
  const Tensor w = model.state_dict().at("conv2d.weight");
  EXPECT_EQ(w.shape(), (Shape{4, 2, 3, 3}));
  const double limit = std::sqrt(6.0 / (2 * 9 + 4 * 9));
  for (double v : w.to_vector<double>()) EXPECT_LE(std::abs(v), limit);
  EXPECT_EQ(model.state_dict().at("conv2d.bias").shape(), (Shape{4}));
  EXPECT_EQ(model.predict(Tensor::zeros({1, 2, 7, 7})).shape(), (Shape{1, 4, 5, 5}));

  Conv2D same(4, 3, {.padding = "same"});
  EXPECT_EQ(same.output_shape({2, 7, 7}), (Shape{4, 7, 7}));
  EXPECT_EQ(same(Tensor::zeros({1, 2, 7, 6})).shape(), (Shape{1, 4, 7, 6}));
  Conv2D same2(4, 3, {.strides = 2, .padding = "same"});
  EXPECT_EQ(same2.output_shape({2, 7, 7}), (Shape{4, 4, 4}));
  EXPECT_EQ(same2.output_shape({2, 8, 5}), (Shape{4, 4, 3}));
  EXPECT_EQ(same2(Tensor::zeros({2, 2, 7, 8})).shape(), (Shape{2, 4, 4, 4}));
  Conv2D even(1, 2, {.padding = "same", .use_bias = false, .kernel_initializer = "ones"});
  // Keras puts the extra pad pixel bottom/right: out[i, j] = sum of x[i..i+1, j..j+1].
  Tensor x = reshape(Tensor::arange(9), {1, 1, 3, 3});
  expect_values(even(x), {8, 12, 7, 20, 24, 13, 13, 15, 8});
  EXPECT_THROW(Conv2D(4, 3, {.padding = "full"}), ValueError);
}

TEST(LayersPooling, MaxPoolingDefaults) {
  MaxPooling2D pool;
  EXPECT_EQ(pool.pool_size().h, 2);
  EXPECT_EQ(pool.pool_size().w, 2);
  EXPECT_EQ(pool.output_shape({3, 8, 8}), (Shape{3, 4, 4}));
  EXPECT_EQ(pool.output_shape({3, 7, 7}), (Shape{3, 3, 3}));
  Tensor x = reshape(Tensor::arange(16), {1, 1, 4, 4});
  expect_values(pool(x), {5, 7, 13, 15});
  AveragePooling2D avg;
  expect_values(avg(x), {2.5, 4.5, 10.5, 12.5});
  Sequential model({Conv2D(2, 3, {.input_shape = {1, 6, 6}}), MaxPooling2D(), Flatten(), Dense(1)});
  EXPECT_EQ(model.layers()[1]->name(), "max_pooling2d");
  EXPECT_EQ(model.layers()[2]->name(), "flatten");
  EXPECT_EQ(param_shapes(model).at("dense.weight"), (Shape{1, 8}));
}

TEST(LayersBatchNorm, ParamsBuffersAndTrainEval) {
  BatchNormalization bn;
  Tensor x = Tensor::of({{1, 2}, {3, 4}, {5, 6}, {7, 8}});
  Tensor y = bn(x);  // training mode by default: batch statistics
  std::vector<std::string> params, buffers;
  for (const auto& [n, t] : bn.named_parameters()) params.push_back(n);
  for (const auto& [n, t] : bn.named_buffers()) buffers.push_back(n);
  EXPECT_EQ(params, (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(buffers, (std::vector<std::string>{"running_mean", "running_var"}));
  EXPECT_EQ(bn.count_params(), 8);
  const double s = std::sqrt(5.0 + 1e-3);  // biased batch variance 5
  expect_values(y, {-3 / s, -3 / s, -1 / s, -1 / s, 1 / s, 1 / s, 3 / s, 3 / s}, 1e-5);
  // Keras momentum 0.99: moving = 0.99 moving + 0.01 batch (unbiased variance 20/3).
  const auto state = bn.state_dict();
  expect_values(state.at("running_mean"), {0.04, 0.05}, 1e-6);
  expect_values(state.at("running_var"), {0.99 + 0.01 * 20 / 3.0, 0.99 + 0.01 * 20 / 3.0}, 1e-6);
  bn.eval();
  EXPECT_FALSE(bn.is_training());
  Tensor ye = bn(x);
  const double rv = std::sqrt(0.99 + 0.01 * 20 / 3.0 + 1e-3);
  EXPECT_NEAR(ye.at({0, 0}), (1 - 0.04) / rv, 1e-5);
  EXPECT_NEAR(ye.at({3, 1}), (8 - 0.05) / rv, 1e-5);
  expect_values(bn.state_dict().at("running_mean"), {0.04, 0.05}, 1e-6);  // eval leaves them
  bn.train();
  EXPECT_TRUE(bn.is_training());
  expect_values(bn(x), y.to_vector<double>(), 1e-5);
}

TEST(LayersDropout, IdentityInEvalAndZeroesRateInTraining) {
  manual_seed(11);
  Dropout drop(0.3);
  Tensor x = Tensor::ones({100, 100});
  EXPECT_TRUE(drop.is_training());
  const std::vector<float> v = drop(x).to_vector<float>();
  size_t zeros = 0;
  for (float f : v) {
    if (f == 0) {
      ++zeros;
    } else {
      EXPECT_NEAR(f, 1 / 0.7, 1e-5);
    }
  }
  EXPECT_NEAR(static_cast<double>(zeros) / 10000.0, 0.3, 0.03);
  drop.eval();
  expect_values(drop(x), std::vector<double>(10000, 1.0));
  EXPECT_THROW(Dropout(1.0), ValueError);
}

TEST(LayersFlatten, FlattensAllButBatch) {
  Flatten flat;
  EXPECT_EQ(flat.output_shape({3, 4, 5}), (Shape{60}));
  Tensor x = reshape(Tensor::arange(24), {2, 3, 4});
  Tensor y = flat(x);
  EXPECT_EQ(y.shape(), (Shape{2, 12}));
  EXPECT_DOUBLE_EQ(y.at({1, 0}), 12);
  EXPECT_DOUBLE_EQ(y.at({1, 11}), 23);
}

TEST(LayersLayerNorm, ZeroMeanUnitVariancePerRow) {
  manual_seed(5);
  LayerNormalization ln;
  Tensor x = Tensor::normal({4, 32}, 5.0, 3.0);
  Tensor y = ln(x);
  EXPECT_EQ(y.shape(), (Shape{4, 32}));
  const Tensor m = mean(y, {1});
  const Tensor var = mean(pow(y - mean(y, {1}, true), 2), {1});
  for (double v : m.to_vector<double>()) EXPECT_NEAR(v, 0.0, 1e-5);
  for (double v : var.to_vector<double>()) EXPECT_NEAR(v, 1.0, 1e-3);
  EXPECT_EQ(param_shapes(ln).at("weight"), (Shape{32}));
  EXPECT_EQ(param_shapes(ln).at("bias"), (Shape{32}));
}

TEST(LayersEmbedding, ShapeAndIndices) {
  manual_seed(6);
  Embedding emb(10, 4);
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 9, 0, 1, 2, 3}, {2, 3});
  Tensor y = emb(ids);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(emb.output_shape({7}), (Shape{7, 4}));
  const Tensor w = emb.state_dict().at("weight");
  EXPECT_EQ(w.shape(), (Shape{10, 4}));
  for (double v : w.to_vector<double>()) EXPECT_LE(std::abs(v), 0.05);
  for (int64_t k = 0; k < 4; ++k) {
    EXPECT_DOUBLE_EQ(y.at({0, 1, k}), w.at({9, k}));
    EXPECT_DOUBLE_EQ(y.at({1, 0, k}), w.at({1, k}));
  }
  // Float indices are accepted, as in Keras.
  expect_values(emb(Tensor::of({{1, 9, 0}, {1, 2, 3}})), y.to_vector<double>());
  EXPECT_THROW(emb(Tensor::from_vector(std::vector<int64_t>{10}, {1})), ValueError);
}

// ---- Sequential naming and summary ---------------------------------------------------------

TEST(SequentialNaming, KerasAutoNamesAndSummary) {
  Sequential model = xor_model();
  EXPECT_EQ(model.layers()[0]->name(), "dense");
  EXPECT_EQ(model.layers()[1]->name(), "dense_1");
  EXPECT_TRUE(model.built());
  const std::string s = model.summary();
  EXPECT_NE(s.find("Total params: 13"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 3)"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 1)"), std::string::npos) << s;
  EXPECT_NE(s.find("dense (Dense)"), std::string::npos) << s;
  EXPECT_NE(s.find("dense_1 (Dense)"), std::string::npos) << s;

  Sequential unbuilt({Dense(3), Dense(1)});
  EXPECT_FALSE(unbuilt.built());
  EXPECT_THROW(unbuilt.summary(), ValueError);
  Sequential bn({Dense(4, {.input_shape = {3}}), BatchNormalization()});
  EXPECT_EQ(bn.layers()[1]->name(), "batch_normalization");
  EXPECT_NE(bn.summary().find("Non-trainable params: 8"), std::string::npos);
}

TEST(SequentialNaming, AutoNameAvoidsUserNames) {
  Sequential model({Dense(3, {.input_shape = {2}, .name = "dense_1"}), Dense(2)});
  EXPECT_NE(model.layers()[1]->name(), "dense_1");
}

// ---- state dicts ---------------------------------------------------------------------------

Sequential state_model(uint64_t seed) {
  manual_seed(seed);
  return Sequential({Dense(4, "relu", {.input_shape = {3}}), BatchNormalization(), Dense(2)});
}

TEST(SequentialState, StateDictRoundTrip) {
  Sequential a = state_model(1);
  Sequential b = state_model(2);
  a.compile("sgd", "mse");
  a.fit(Tensor::normal({16, 3}), Tensor::normal({16, 2}), {.epochs = 1, .batch_size = 8, .verbose = 0});
  const Tensor x = Tensor::normal({5, 3});
  const auto state = a.state_dict();
  EXPECT_EQ(state.size(), 8u);
  EXPECT_EQ(state.count("batch_normalization.running_var"), 1u);
  EXPECT_NE(a.predict(x).to_vector<float>(), b.predict(x).to_vector<float>());
  b.load_state_dict(state);
  EXPECT_EQ(a.predict(x).to_vector<float>(), b.predict(x).to_vector<float>());
  // Values were copied, not aliased.
  state.at("dense.bias").fill_(100);
  EXPECT_NE(a.predict(x).to_vector<float>(), b.predict(x).to_vector<float>());
}

TEST(SequentialState, LoadErrors) {
  Sequential model = state_model(1);
  auto state = state_model(2).state_dict();
  auto wrong = state;
  wrong["dense_1.weight"] = Tensor::zeros({3, 3});
  expect_error<ShapeError>([&] { model.load_state_dict(wrong); }, {"dense_1.weight", "(3, 3)", "(2, 4)"});
  auto missing = state;
  missing.erase("batch_normalization.running_mean");
  expect_error<ValueError>([&] { model.load_state_dict(missing); },
                           {"batch_normalization.running_mean"});
  model.load_state_dict(missing, /*strict=*/false);
  auto extra = state;
  extra["dense_9.weight"] = Tensor::zeros({1});
  expect_error<ValueError>([&] { model.load_state_dict(extra); }, {"dense_9.weight"});
}

// ---- losses --------------------------------------------------------------------------------

TEST(LossesValues, MeanSquaredError) {
  EXPECT_NEAR(mean_squared_error(Tensor::of({1, 2, 3}), Tensor::of({1.5, 2, 2})).item(),
              (0.25 + 0 + 1) / 3.0, 1e-6);
  // (n) targets against (n, 1) predictions.
  EXPECT_NEAR(mean_squared_error(Tensor::of({1, 2}), column({0, 0})).item(), 2.5, 1e-6);
  EXPECT_NEAR(Loss("mse")(Tensor::of({0}), Tensor::of({2})).item(), 4, 1e-6);
  EXPECT_EQ(Loss("mse").name(), "mean_squared_error");
}

TEST(LossesValues, BinaryCrossentropyProbabilitiesAndLogits) {
  Tensor y = Tensor::of({1, 0, 1});
  Tensor logits = Tensor::of({0.3, -1.2, 2.0}, DType::kFloat64);
  Tensor p = sigmoid(logits);
  const double want = -(std::log(p.at({0})) + std::log(1 - p.at({1})) + std::log(p.at({2}))) / 3;
  EXPECT_NEAR(binary_crossentropy(y, p).item(), want, 1e-9);
  EXPECT_NEAR(binary_crossentropy(y, logits, true).item(), want, 1e-9);
  EXPECT_NEAR(binary_crossentropy(Tensor::of({1, 0}), Tensor::of({0.8, 0.3})).item(),
              -(std::log(0.8) + std::log(0.7)) / 2, 1e-6);
  // Extreme logits stay finite: y=1 at x=-1000 costs 1000, the others nothing.
  const double extreme = binary_crossentropy(Tensor::of({1, 0, 1}), Tensor::of({-1000, -1000, 1000}), true).item();
  EXPECT_TRUE(std::isfinite(extreme));
  EXPECT_NEAR(extreme, 1000 / 3.0, 1e-3);
  // Probabilities of exactly 0 and 1 are clipped, not log(0).
  EXPECT_TRUE(std::isfinite(binary_crossentropy(Tensor::of({1, 0}), Tensor::of({0, 1})).item()));
}

TEST(LossesValues, CategoricalAndSparseAgree) {
  Tensor probs = Tensor::of({{0.2, 0.7, 0.1}, {0.5, 0.3, 0.2}});
  Tensor onehot = Tensor::of({{0, 1, 0}, {1, 0, 0}});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 0}, {2});
  const double want = -(std::log(0.7) + std::log(0.5)) / 2;
  EXPECT_NEAR(categorical_crossentropy(onehot, probs).item(), want, 1e-6);
  EXPECT_NEAR(sparse_categorical_crossentropy(labels, probs).item(), want, 1e-6);
  EXPECT_NEAR(sparse_categorical_crossentropy(Tensor::of({1, 0}), probs).item(), want, 1e-6);
  EXPECT_NEAR(sparse_categorical_crossentropy(column({1, 0}), probs).item(), want, 1e-6);
  Tensor logits = Tensor::of({{1, 2, 0.5}, {-1, 0, 3}});
  const double a = categorical_crossentropy(onehot, logits, true).item();
  const double b = sparse_categorical_crossentropy(labels, logits, true).item();
  EXPECT_NEAR(a, b, 1e-6);
  EXPECT_NEAR(a, categorical_crossentropy(onehot, softmax(logits, 1)).item(), 1e-5);
}

TEST(LossesValues, FromLogitsStableForHugeLogits) {
  Tensor logits = Tensor::of({{1000, -1000, 0}, {-1000, 1000, 0}});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 1}, {2});
  const double s = sparse_categorical_crossentropy(labels, logits, true).item();
  EXPECT_TRUE(std::isfinite(s));
  EXPECT_NEAR(s, 1000.0, 1e-2);  // 2000 for the first row, 0 for the second
  const double c = categorical_crossentropy(Tensor::of({{0, 1, 0}, {0, 1, 0}}), logits, true).item();
  EXPECT_NEAR(c, s, 1e-2);
}

TEST(LossesErrors, BadLabelsAndNames) {
  Tensor probs = Tensor::of({{0.2, 0.7, 0.1}, {0.5, 0.3, 0.2}});
  expect_error<ValueError>(
      [&] {
        sparse_categorical_crossentropy(Tensor::from_vector(std::vector<int64_t>{1, 3}, {2}), probs);
      },
      {"sparse_categorical_crossentropy", "label 3"});
  expect_error<ValueError>(
      [&] { sparse_categorical_crossentropy(Tensor::from_vector(std::vector<int64_t>{-1, 0}, {2}), probs); },
      {"label -1"});
  expect_error<ValueError>([&] { sparse_categorical_crossentropy(Tensor::of({0.5, 1}), probs); },
                           {"0.5"});
  expect_error<ValueError>([] { Loss("unknown"); }, {"unknown"});
  EXPECT_THROW(categorical_crossentropy(Tensor::of({{1, 0}}), probs), ShapeError);
}

// ---- optimizers ----------------------------------------------------------------------------

TEST(OptimSteps, SGDPlainAndMomentum) {
  Tensor w = param_with_grad({1, -2, 3}, {0.5, -1, 2});
  SGD sgd({.learning_rate = 0.1});
  sgd.attach({w});
  sgd.step();
  expect_values(w, {1 - 0.05, -2 + 0.1, 3 - 0.2}, 1e-12);
  EXPECT_EQ(sgd.iterations(), 1);

  Tensor v = param_with_grad({1, 1}, {1, -2});
  SGD momentum({.learning_rate = 0.1, .momentum = 0.9});
  momentum.attach({v});
  momentum.step();  // b = g; w -= lr b
  expect_values(v, {0.9, 1.2}, 1e-12);
  v.set_grad(Tensor::of({0.5, 0.5}, DType::kFloat64));
  momentum.step();  // b = 0.9 b + g = (1.4, -1.3)
  expect_values(v, {0.9 - 0.14, 1.2 + 0.13}, 1e-12);
  // A parameter without a gradient is skipped.
  Tensor untouched = Tensor::of({5.0}, DType::kFloat64);
  untouched.set_requires_grad(true);
  SGD other;
  other.attach({untouched});
  other.step();
  EXPECT_DOUBLE_EQ(untouched.item(), 5.0);
}

TEST(OptimSteps, AdamFirstStepMovesByLearningRate) {
  Tensor w = param_with_grad({1, -2, 3, 0}, {0.5, -1, 20, -0.01});
  Adam adam({.learning_rate = 0.01});
  adam.attach({w});
  adam.step();
  expect_values(w, {1 - 0.01, -2 + 0.01, 3 - 0.01, 0 + 0.01}, 1e-6);
  const auto state = adam.state();
  EXPECT_EQ(state.count("m.0"), 1u);
  EXPECT_EQ(state.count("v.0"), 1u);
  EXPECT_DOUBLE_EQ(state.at("iterations").item(), 1);
}

TEST(OptimSteps, AdamWDecaysWeightsWithZeroGradient) {
  Tensor w = param_with_grad({1, -2}, {0, 0});
  AdamW adamw({.learning_rate = 0.1, .weight_decay = 0.5});
  EXPECT_EQ(adamw.name(), "adamw");
  adamw.attach({w});
  adamw.step();
  expect_values(w, {1 * (1 - 0.05), -2 * (1 - 0.05)}, 1e-12);
  EXPECT_DOUBLE_EQ(AdamW().learning_rate(), 0.001);
}

TEST(OptimSteps, RMSpropOneStep) {
  Tensor w = param_with_grad({1, -2}, {0.5, -3});
  RMSprop rms({.learning_rate = 0.01});
  rms.attach({w});
  rms.step();
  auto moved = [](double g) { return 0.01 * g / (std::sqrt(0.1 * g * g) + 1e-7); };
  expect_values(w, {1 - moved(0.5), -2 - moved(-3)}, 1e-9);
}

TEST(OptimSteps, GlobalClipnormScalesGradients) {
  Tensor a = param_with_grad({0, 0}, {3, 0});
  Tensor b = param_with_grad({0}, {4});
  SGD sgd({.learning_rate = 1.0, .global_clipnorm = 1.0});
  sgd.attach({a, b});
  sgd.step();  // joint norm 5 -> gradients scaled by 1/5
  expect_values(a, {-0.6, 0}, 1e-12);
  expect_values(b, {-0.8}, 1e-12);
  Tensor c = param_with_grad({0}, {0.5});
  SGD small({.learning_rate = 1.0, .global_clipnorm = 1.0});
  small.attach({c});
  small.step();  // under the limit: unchanged gradient
  expect_values(c, {-0.5}, 1e-12);
}

TEST(OptimFactory, NamesAndKerasDefaults) {
  EXPECT_DOUBLE_EQ(SGD().learning_rate(), 0.01);
  EXPECT_DOUBLE_EQ(Adam().learning_rate(), 0.001);
  EXPECT_DOUBLE_EQ(RMSprop().learning_rate(), 0.001);
  EXPECT_DOUBLE_EQ(make_optimizer("sgd")->learning_rate(), 0.01);
  EXPECT_DOUBLE_EQ(make_optimizer("adam")->learning_rate(), 0.001);
  EXPECT_DOUBLE_EQ(make_optimizer("rmsprop")->learning_rate(), 0.001);
  EXPECT_DOUBLE_EQ(make_optimizer("adam", 0.5)->learning_rate(), 0.5);
  EXPECT_EQ(make_optimizer("rmsprop")->name(), "rmsprop");
  expect_error<ValueError>([] { make_optimizer("nope"); }, {"nope"});
  EXPECT_THROW(SGD({.learning_rate = -1}), ValueError);
}

// ---- Sequential API ------------------------------------------------------------------------

TEST(SequentialApi, Errors) {
  Sequential model = xor_model();
  expect_error<ValueError>([&] { model.fit(xor_x(), xor_y(), {.verbose = 0}); }, {"compile"});
  expect_error<ValueError>([&] { model.evaluate(xor_x(), xor_y(), {.verbose = 0}); }, {"compile"});
  model.compile("adam", "binary_crossentropy", {"accuracy"});
  expect_error<ShapeError>([&] { model.fit(xor_x(), column({0, 1, 1}), {.verbose = 0}); },
                           {"(4, 2)", "(3, 1)"});
  expect_error<ValueError>([] { Dense(4, "nonexistent_activation"); }, {"nonexistent_activation"});
  EXPECT_THROW(model.compile("adam", "mse", {"no_such_metric"}), ValueError);
  EXPECT_THROW(model.compile("nope", "mse"), ValueError);
  // Wrong feature count at predict time names the layer and the shape.
  expect_error<ShapeError>([&] { model.predict(Tensor::zeros({2, 5})); }, {"dense", "(2, 5)"});
}

TEST(SequentialApi, FitEvaluatePredict) {
  manual_seed(21);
  Sequential model = xor_model();
  model.compile(Adam({.learning_rate = 0.05}), "binary_crossentropy", {"accuracy"});
  History h = model.fit(xor_x(), xor_y(), {.epochs = 3, .batch_size = 2, .verbose = 0});
  EXPECT_EQ(h.epochs, 3);
  ASSERT_EQ(h.history.count("loss"), 1u);
  ASSERT_EQ(h.history.count("accuracy"), 1u);
  EXPECT_EQ(h.history.at("loss").size(), 3u);
  EXPECT_EQ(h.history.at("accuracy").size(), 3u);
  EXPECT_EQ(h.history.count("val_loss"), 0u);

  // validation_split holds out the last rows.
  Tensor x = Tensor::normal({20, 2});
  Tensor y = reshape(Tensor::uniform({20}, 0, 1), {20, 1});
  History hv = model.fit(x, y, {.epochs = 2, .validation_split = 0.25, .verbose = 0});
  ASSERT_EQ(hv.history.count("val_loss"), 1u);
  EXPECT_EQ(hv.history.at("val_loss").size(), 2u);
  EXPECT_EQ(hv.history.count("val_accuracy"), 1u);

  Tensor p = model.predict(Tensor::normal({70, 2}), 32);  // several batches, concatenated
  EXPECT_EQ(p.shape(), (Shape{70, 1}));
  for (double v : p.to_vector<double>()) {
    EXPECT_GT(v, 0);
    EXPECT_LT(v, 1);
  }
  Scores s = model.evaluate(xor_x(), xor_y(), {.verbose = 0});
  ASSERT_EQ(s.names(), (std::vector<std::string>{"loss", "accuracy"}));
  EXPECT_DOUBLE_EQ(s[0], s["loss"]);
  EXPECT_DOUBLE_EQ(s[1], s["accuracy"]);
  EXPECT_NEAR(s["loss"], binary_crossentropy(xor_y(), model.predict(xor_x())).item(), 1e-5);
  EXPECT_THROW(s["nope"], ValueError);
  EXPECT_THROW(s[5], std::out_of_range);
}

TEST(SequentialApi, LearnsXor) {
  manual_seed(0);
  Sequential model({Dense(8, "tanh", {.input_shape = {2}}), Dense(1, "sigmoid")});
  model.compile(Adam({.learning_rate = 0.05}), "binary_crossentropy", {"accuracy"});
  History h = model.fit(xor_x(), xor_y(), {.epochs = 300, .batch_size = 4, .verbose = 0});
  EXPECT_LT(h.history.at("loss").back(), h.history.at("loss").front());
  EXPECT_DOUBLE_EQ(model.evaluate(xor_x(), xor_y(), {.verbose = 0})["accuracy"], 1.0);
}

TEST(SequentialThreads, ConcurrentPredictMatchesSingleThreaded) {
  manual_seed(8);
  Sequential model({Dense(16, "relu", {.input_shape = {4}}), Dropout(0.5), Dense(3, "softmax")});
  model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
  Tensor x = Tensor::normal({64, 4});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>(64, 1), {64});
  model.fit(x, labels, {.epochs = 2, .batch_size = 16, .verbose = 0});
  const std::vector<float> reference = model.predict(x).to_vector<float>();
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 10; ++rep) {
        if (model.predict(x, 16).to_vector<float>() != reference) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
