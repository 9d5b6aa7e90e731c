// Models that are graphs: the functional API (Input, layer calls, merge layers), subclassed
// modules with several inputs, configs with `inputs:`, and the model file of each. Every kind
// trains with fit, checkpoints, resumes bit-identically and saves/loads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "neutrino/cli/config.h"
#include "neutrino/neutrino.h"
#include "test_util.h"

using namespace neutrino;
using namespace neutrino::nn;
using namespace neutrino::train;
using neutrino::testing::expect_error;
using neutrino::testing::run_cli;
namespace fs = std::filesystem;

namespace {
using neutrino::testing::flat_weights;
fs::path temp_dir(const std::string& name) { return neutrino::testing::fresh_temp_dir("graph_" + name); }

void write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// Tiny 1x6x6 images in 3 classes: the class sets which third of the image is bright.
std::pair<Tensor, Tensor> stripes(int64_t n, uint64_t seed) {
  manual_seed(seed);
  Tensor x = mul(Tensor::normal({n, 1, 6, 6}), 0.3);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  float* p = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    labels[static_cast<size_t>(i)] = i % 3;
    for (int64_t r = 0; r < 2; ++r) {
      for (int64_t c = 0; c < 6; ++c) p[i * 36 + (2 * (i % 3) + r) * 6 + c] += 1.0f;
    }
  }
  return {x, Tensor::from_vector(labels, {n})};
}

// conv -> conv -> Add(conv1, conv2) -> global average pool -> dense: one residual block.
Model residual_model() {
  auto in = Input({1, 6, 6}, "image");
  auto c1 = Conv2D(4, 3, {.name = "c1", .padding = "same", .activation = "relu"})(in);
  auto c2 = Conv2D(4, 3, {.name = "c2", .padding = "same", .use_bias = false})(c1);
  auto sum = Add()({c1, c2});
  auto act = ReLU()(sum);
  auto pooled = GlobalAveragePooling2D()(act);
  auto out = Dense(3, "softmax")(pooled);
  return Model(in, out, "residual");
}

// A PyTorch-style module with two inputs: the features and a 0/1 mask over them.
class MaskedNet : public Module {
 public:
  using Module::forward;  // keeps forward(x), which says it wants two inputs
  MaskedNet() {
    register_module("fc1", fc1_);
    register_module("fc2", fc2_);
  }
  Tensor forward(const std::vector<Tensor>& inputs) override {
    NEUTRINO_CHECK_VALUE(inputs.size() == 2, "MaskedNet takes (x, mask)");
    return (*fc2_)(mul((*fc1_)(inputs[0]), inputs[1]));
  }

 private:
  std::shared_ptr<Dense> fc1_ = std::make_shared<Dense>(8, "relu");
  std::shared_ptr<Dense> fc2_ = std::make_shared<Dense>(2, "softmax");
};

std::tuple<Tensor, Tensor, Tensor> masked_data(int64_t n) {
  manual_seed(3);
  Tensor x = Tensor::normal({n, 4});
  Tensor mask = Tensor::ones({n, 8});
  std::vector<int64_t> labels(static_cast<size_t>(n));
  float* p = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    labels[static_cast<size_t>(i)] = i % 2;
    p[i * 4] += i % 2 ? 1.5f : -1.5f;
  }
  return {x, mask, Tensor::from_vector(labels, {n})};
}
}  // namespace

TEST(GraphModel, FunctionalResidualModelTrainsAndShowsConnections) {
  auto [x, y] = stripes(120, 1);
  manual_seed(7);
  Model model = residual_model();
  ASSERT_TRUE(model.built());
  EXPECT_FALSE(model.graph()->is_chain());
  model.compile(optim::Adam({.learning_rate = 0.02}), "sparse_categorical_crossentropy", {"accuracy"});
  const History h = model.fit(x, y, {.epochs = 25, .batch_size = 16, .verbose = 0});
  EXPECT_LT(h.history.at("loss").back(), h.history.at("loss").front() * 0.6);
  EXPECT_GE(model.evaluate(x, y, {.verbose = 0})["accuracy"], 0.9);
  const std::string summary = model.summary();
  EXPECT_NE(summary.find("Connected to"), std::string::npos) << summary;
  EXPECT_NE(summary.find("image (InputLayer)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("[c1[0][0], c2[0][0]]"), std::string::npos) << summary;
  // Parameters keep the layers' names: c1.weight, c2.weight (no bias), dense.weight, ...
  const auto state = model.state_dict();
  EXPECT_TRUE(state.count("c1.bias"));
  EXPECT_FALSE(state.count("c2.bias"));
  EXPECT_TRUE(state.count("dense.weight"));
}

TEST(GraphModel, FunctionalModelResumesBitIdenticallyAndSavesAndLoads) {
  const fs::path dir = temp_dir("functional");
  auto [x, y] = stripes(60, 2);
  auto run = [&](int epochs, const std::string& checkpoint, const std::string& resume) {
    manual_seed(11);
    Model model = residual_model();
    model.compile(optim::Adam({.learning_rate = 0.01}), "sparse_categorical_crossentropy", {"accuracy"});
    model.fit(x, y, {.epochs = epochs, .batch_size = 8, .validation_split = 0.2, .verbose = 0,
                     .checkpoint_path = checkpoint, .resume_from = resume});
    return model;
  };
  Model straight = run(4, "", "");
  const std::string ckpt = (dir / "ckpt.safetensors").string();
  run(2, ckpt, "");
  const Model resumed = run(4, "", ckpt);
  EXPECT_EQ(flat_weights(straight), flat_weights(resumed));

  const std::string path = (dir / "model.safetensors").string();
  save_model(path, straight);
  Model loaded = load_model(path).model;
  ASSERT_NE(loaded.graph(), nullptr);
  EXPECT_FALSE(loaded.graph()->is_chain());
  EXPECT_EQ(loaded.graph()->nodes().front().name, "image");
  const Tensor a = straight.predict(x), b = loaded.predict(x);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(GraphModel, SubclassedTwoInputModuleTrainsResumesAndReloadsWeights) {
  const fs::path dir = temp_dir("subclassed");
  auto [x, mask, y] = masked_data(64);
  auto run = [&](int epochs, const std::string& checkpoint, const std::string& resume) {
    manual_seed(5);
    Model model(std::make_shared<MaskedNet>(), "masked");
    model.compile(optim::Adam({.learning_rate = 0.02}), "sparse_categorical_crossentropy", {"accuracy"});
    History h = model.fit({x, mask}, y, {.epochs = epochs, .batch_size = 8, .verbose = 0,
                                          .checkpoint_path = checkpoint, .resume_from = resume});
    return std::make_pair(model, h);
  };
  auto [straight, history] = run(6, "", "");
  EXPECT_LT(history.history.at("loss").back(), history.history.at("loss").front());
  EXPECT_GE(straight.evaluate({x, mask}, y, {.verbose = 0})["accuracy"], 0.9);
  // The state_dict holds the module's own names.
  EXPECT_TRUE(straight.state_dict().count("fc1.weight"));
  const std::string ckpt = (dir / "ckpt.safetensors").string();
  run(3, ckpt, "");
  auto [resumed, unused] = run(6, "", ckpt);
  EXPECT_EQ(flat_weights(straight), flat_weights(resumed));

  // The C++ class is the architecture: weights go into a new instance, and load_model says so.
  const std::string path = (dir / "weights.safetensors").string();
  save_weights(path, straight);
  Model fresh(std::make_shared<MaskedNet>(), "masked");
  fresh.predict({x, mask});  // builds the layers
  load_weights(path, fresh);
  EXPECT_EQ(fresh.predict({x, mask}).to_vector<float>(), straight.predict({x, mask}).to_vector<float>());
  expect_error<IOError>([&] { load_model(path); }, {"subclassed", "load_weights"});
  // One input where the module takes two.
  expect_error<ValueError>([&] { fresh.predict(x); }, {"MaskedNet takes (x, mask)"});
}

TEST(GraphModel, PredictDoesNotChangeASharedModelsTrainingFlag) {
  Model model = residual_model();
  model.train(true);
  auto [x, y] = stripes(6, 4);
  model.predict(x);
  EXPECT_TRUE(model.is_training());
  EXPECT_TRUE(model.layers().front()->is_training());
}

TEST(GraphModel, MergeLayersCheckTheirInputs) {
  auto a = Input({4}, "a");
  auto b = Input({5}, "b");
  expect_error<ShapeError>([&] { Add()({a, b}); }, {"Add", "same shape", "(4,), (5,)"});
  expect_error<ValueError>([&] { Subtract()({a, a, a}); }, {"Subtract", "takes 2 inputs, got 3"});
  expect_error<ValueError>([&] { Add()(a); }, {"at least 2 inputs, got 1"});
  auto joined = Concatenate()({a, b});
  EXPECT_EQ(joined.shape(), Shape({9}));
  Model model({a, b}, {Dense(1)(joined)});
  const Tensor out = model.predict({Tensor::ones({3, 4}), Tensor::ones({3, 5})});
  EXPECT_EQ(out.shape(), Shape({3, 1}));
  expect_error<ValueError>([&] { model.predict(Tensor::ones({3, 4})); }, {"takes 2 input(s), got 1"});
  // An output that needs an input the model does not list.
  expect_error<ValueError>([&] { Model bad(a, Dense(1)(joined)); }, {"Input 'b'", "not among"});
  // Merge layers compute what they say.
  auto x1 = Input({2}), x2 = Input({2});
  Model ops({x1, x2}, {Concatenate()({Subtract()({x1, x2}), Multiply()({x1, x2}), Average()({x1, x2})})});
  const Tensor got = ops.predict({Tensor::from_vector(std::vector<float>{3, 4}, {1, 2}),
                                  Tensor::from_vector(std::vector<float>{1, 2}, {1, 2})});
  neutrino::testing::expect_values(got, {2, 2, 3, 8, 2, 3});
}

TEST(GraphModel, SharedLayerIsOneSetOfWeights) {
  auto in = Input({3});
  auto shared = std::make_shared<Dense>(3, DenseOptions{.name = "shared"});
  auto out = (*shared)((*shared)(in));
  Model model(in, out);
  EXPECT_EQ(model.state_dict().size(), 2u);  // shared.weight, shared.bias
  EXPECT_EQ(model.graph()->nodes().size(), 3u);
  expect_error<ValueError>([&] { model_to_json(model); }, {"'shared' is called more than once"});
}

TEST(GraphModel, ZeroPaddingAndGlobalPoolingShapes) {
  auto in = Input({2, 5, 7});
  auto padded = ZeroPadding2D(Size2(1, 2), Size2(0, 3))(in);
  EXPECT_EQ(padded.shape(), Shape({2, 8, 10}));
  EXPECT_EQ(GlobalMaxPooling2D()(padded).shape(), Shape({2}));
  Model model(in, padded);
  Tensor x = Tensor::ones({1, 2, 5, 7});
  const Tensor y = model.predict(x);
  EXPECT_EQ(y.shape(), Shape({1, 2, 8, 10}));
  EXPECT_DOUBLE_EQ(sum(y).item(), 70.0);
  EXPECT_DOUBLE_EQ(y.to_vector<float>()[0], 0.0);  // a padded corner
}

TEST(GraphModel, ConfigWithInputsBuildsAGraphAndNamesBadReferences) {
  const std::string layers =
      R"([{"Conv2D": {"name": "c1", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"}},
          {"Conv2D": {"name": "c2", "filters": 4, "kernel_size": 3, "padding": "same"}},
          {"Add": {"inputs": ["c1", "c2"]}},
          {"GlobalAveragePooling2D": {}},
          {"Dense": {"units": 3, "activation": "softmax"}}])";
  Model model = model_from_json(R"({"input_shape": [1, 6, 6], "layers": )" + layers + "}", "cfg");
  ASSERT_TRUE(model.built());
  EXPECT_FALSE(model.graph()->is_chain());
  EXPECT_EQ(model.graph()->nodes()[3].inputs, (std::vector<int>{1, 2}));
  // The written config reads back to the same graph.
  Model again = model_from_json(model_to_json(model), "again");
  EXPECT_EQ(model_to_json(again), model_to_json(model));
  expect_error<ValueError>(
      [] {
        model_from_json(R"({"input_shape": [4], "layers": [{"Dense": {"units": 2, "inputs": "nope"}}]})", "cfg");
      },
      {"cfg.layers[0].Dense.inputs", "'nope'"});
  expect_error<ValueError>(
      [] {
        model_from_json(R"({"input_shape": [4], "layers": [{"Dense": {"name": "d", "units": 2}},
                            {"Add": {"inputs": ["d"]}}]})", "cfg");
      },
      {"cfg.layers[1]", "at least 2 inputs, got 1"});
  expect_error<ValueError>(
      [] {
        model_from_json(R"({"input_shape": [4], "layers": [{"Dense": {"units": 2, "inputs": [3]}}]})", "cfg");
      },
      {"cfg.layers[0].Dense.inputs", "a name or a list of names"});
}

// A config is checked through the whole graph when read, and its weights are made only once, by
// the command that builds it.
TEST(GraphModel, CheckingAConfigFindsShapeErrorsWithoutBuilding) {
  check_model_json(R"({"input_shape": [4], "layers": [{"Dense": {"name": "a", "units": 3}},
                       {"Dense": {"name": "b", "units": 3}}, {"Add": {"inputs": ["a", "b"]}}]})");
  expect_error<ValueError>(
      [] {
        check_model_json(R"({"input_shape": [4], "layers": [{"Dense": {"name": "a", "units": 3}},
                             {"Dense": {"name": "b", "units": 2}}, {"Add": {"inputs": ["a", "b"]}}]})",
                         "cfg");
      },
      {"cfg", "(3,)", "(2,)"});
  // 2^30 weights (4 GiB) pass the size limits: checked in moments, never allocated.
  check_model_json(R"({"input_shape": [32768], "layers": [{"Dense": {"units": 32768}}]})");
}

TEST(GraphModel, ModelFilesFromTheChainOnlyFormatStillLoad) {
  // Written by the first model-file format (Sequential only), before graphs.
  const std::string path = std::string(NEUTRINO_SOURCE_DIR) + "/tests/data/model_file_v1_cnn.safetensors";
  Model model = load_model(path).model;
  ASSERT_NE(model.graph(), nullptr);
  EXPECT_TRUE(model.graph()->is_chain());
  EXPECT_EQ(model.input_shapes().front(), Shape({1, 4, 4}));
  EXPECT_EQ(model.predict(Tensor::ones({2, 1, 4, 4})).size(0), 2);
  EXPECT_NE(model_to_json(model).find("\"class_name\":\"Sequential\""), std::string::npos);
}

TEST(GraphModel, CliTrainsAndResumesAConfigWithInputs) {
  const fs::path dir = temp_dir("cli");
  const std::string csv = std::string(NEUTRINO_SOURCE_DIR) + "/configs/data/xor.csv";
  write(dir / "res.yaml", "seed: 42\ndata:\n  train: {csv: " + csv + ", label: y}\n  test: {csv: " + csv +
                              ", label: y}\nmodel:\n  input_shape: [2]\n  layers:\n"
                              "    - Dense: {name: h1, units: 4, activation: tanh}\n"
                              "    - Dense: {name: h2, units: 4, activation: tanh}\n"
                              "    - Add: {inputs: [h1, h2]}\n"
                              "    - Concatenate: {inputs: [add, input]}\n"
                              "    - Dense: {units: 1, activation: sigmoid}\n"
                              "compile:\n  optimizer: {adam: {learning_rate: 0.05}}\n  loss: binary_crossentropy\n"
                              "  metrics: [accuracy]\nfit:\n  epochs: 40\n  batch_size: 4\n  verbose: 0\n");
  const std::string cfg = (dir / "res.yaml").string();
  const auto straight = run_cli("train " + cfg + " -o " + (dir / "straight.safetensors").string());
  ASSERT_EQ(straight.code, 0) << straight.output;
  ASSERT_EQ(run_cli("train " + cfg + " -o " + (dir / "half.safetensors").string() + " --epochs 20").code, 0);
  const auto resumed = run_cli("train " + cfg + " -o " + (dir / "resumed.safetensors").string() +
                               " --resume " + (dir / "half.ckpt.safetensors").string());
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  std::ifstream a(dir / "straight.safetensors", std::ios::binary), b(dir / "resumed.safetensors", std::ios::binary);
  const std::string bytes_a((std::istreambuf_iterator<char>(a)), {}), bytes_b((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(bytes_a, bytes_b);
  const auto summary = run_cli("summary " + (dir / "straight.safetensors").string());
  ASSERT_EQ(summary.code, 0) << summary.output;
  EXPECT_NE(summary.output.find("[add[0][0], input[0][0]]"), std::string::npos) << summary.output;
  const auto eval = run_cli("eval " + (dir / "straight.safetensors").string() + " --data " + csv + " --json");
  ASSERT_EQ(eval.code, 0) << eval.output;
  write(dir / "bad.yaml", "data:\n  train: {csv: " + csv + ", label: y}\nmodel:\n  input_shape: [2]\n  layers:\n"
                             "    - Dense: {units: 4}\n    - Add: {inputs: [dense, missing]}\n");
  const auto bad = run_cli("train " + (dir / "bad.yaml").string() + " -o " + (dir / "x.safetensors").string());
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("'missing'"), std::string::npos) << bad.output;
}

TEST(GeneratorGuard, ModelsAndFitDependOnTheGivenGeneratorOnly) {
  auto [x, y] = stripes(40, 9);
  const Tensor flat = reshape(x, {40, 36});
  auto run = [&](uint64_t global_seed, bool own_generator) {
    manual_seed(global_seed);
    Generator gen(77);
    auto make = [&] {
      std::optional<GeneratorGuard> guard;
      if (own_generator) guard.emplace(gen);  // the initializers draw from gen
      return Sequential({Dense(8, "relu", {.input_shape = {36}}), Dropout(0.5), Dense(3, "softmax")});
    };
    Sequential model = make();
    model.compile(optim::Adam({.learning_rate = 0.01}), "sparse_categorical_crossentropy");
    model.fit(flat, y, {.epochs = 3, .batch_size = 8, .verbose = 0,
                        .generator = own_generator ? &gen : nullptr});
    return flat_weights(model);
  };
  // Dropout masks, the shuffle and the initial weights all come from gen: the global seed is moot.
  EXPECT_EQ(run(1, true), run(2, true));
  // Without it they follow the global seed (the check above could fail).
  EXPECT_NE(run(1, false), run(2, false));
}
