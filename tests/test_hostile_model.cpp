// Hostile model files, checkpoints and configs: every one is refused with an error naming the
// file and the field, before any allocation sized by its numbers, and in time linear in its size.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "neutrino/cli/config.h"
#include "neutrino/data/pipeline.h"
#include "neutrino/data/preprocess.h"
#include "neutrino/io/config_reader.h"
#include "neutrino/io/model_file.h"
#include "neutrino/io/tensor_file.h"
#include "neutrino/neutrino.h"
#include "neutrino/train/model_file.h"
#include "test_util.h"

using namespace neutrino;
using namespace neutrino::nn;
using namespace neutrino::train;
using neutrino::testing::expect_error;
namespace fs = std::filesystem;

namespace {
using neutrino::testing::flat_weights;
fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("neutrino_hostile_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// Rewrites one metadata value of a model file or checkpoint (the checksum covers tensors only).
void set_metadata(const std::string& path, const std::string& key, const std::string& value) {
  io::TensorFile file = io::load_tensors(path);
  file.metadata[key] = value;
  io::save_tensors(path, file.tensors, file.metadata);
}

// Replaces one tensor and updates the checksum, as a careful attacker would.
void set_tensor(const std::string& path, const std::string& name, const Tensor& value) {
  io::TensorFile file = io::load_tensors(path);
  file.tensors[name] = value;
  file.metadata["checksum"] = io::tensors_checksum(file.tensors);
  io::save_tensors(path, file.tensors, file.metadata);
}

std::pair<Tensor, Tensor> blobs(int64_t n) {
  manual_seed(7);
  Tensor x = Tensor::normal({n, 4});
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = i % 2;
  return {x, Tensor::from_vector(labels, {n})};
}

Sequential compiled_model() {
  manual_seed(11);
  Sequential model({Dense(8, "relu", {.input_shape = {4}}), Dense(2, "softmax")});
  model.compile(optim::Adam({.learning_rate = 0.01}), "sparse_categorical_crossentropy", {"accuracy"});
  return model;
}

// Writes a checkpoint after `epochs` epochs of the small model.
std::string checkpoint_after(const fs::path& dir, int epochs) {
  const std::string ckpt = (dir / "ckpt.safetensors").string();
  auto [x, y] = blobs(32);
  Sequential model = compiled_model();
  model.fit(x, y, {.epochs = epochs, .batch_size = 8, .verbose = 0, .checkpoint_path = ckpt});
  return ckpt;
}

void resume(const std::string& ckpt, std::vector<CallbackPtr> callbacks = {}) {
  auto [x, y] = blobs(32);
  Sequential model = compiled_model();
  model.fit(x, y, {.epochs = 3, .batch_size = 8, .verbose = 0, .callbacks = std::move(callbacks),
                   .resume_from = ckpt});
}

// A config with one training file (never read by load_experiment) and the given sections.
std::string config(const std::string& layers, const std::string& rest = "") {
  return "data:\n  train: x.csv\nmodel:\n  input_shape: [4]\n  layers:\n" + layers + rest;
}

void expect_config_error(const fs::path& dir, const std::string& text,
                         const std::vector<std::string>& parts) {
  write(dir / "c.yaml", text);
  std::vector<std::string> all = parts;
  all.push_back("c.yaml");
  expect_error<Error>([&] { cli::load_experiment((dir / "c.yaml").string()); }, all);
}
}  // namespace

// ---- 1. every field read through a checked accessor ------------------------------------------

TEST(HostileModel, DeeplyNestedArchitectureIsRefusedBeforeParsing) {
  const fs::path dir = temp_dir("deep");
  const std::string path = (dir / "m.safetensors").string();
  save_model(path, compiled_model());
  set_metadata(path, "architecture",
               R"({"class_name": "Sequential", "layers": )" + std::string(200000, '[') +
                   std::string(200000, ']') + "}");
  expect_error<IOError>([&] { load_model(path); }, {path, "architecture", "nested deeper than 64"});
  // Brackets inside strings do not count.
  EXPECT_NO_THROW(io::parse_json(R"({"a": ")" + std::string(100, '[') + R"("})", "x"));
}

TEST(HostileModel, MalformedTrainingStateNamesTheField) {
  const fs::path dir = temp_dir("state");
  const std::string ckpt = checkpoint_after(dir, 1);
  const io::TensorFile good = io::load_tensors(ckpt);
  const std::string state = good.metadata.at("training_state");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = state;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    set_metadata(ckpt, "training_state", s);
  };
  const std::string seed_field = state.substr(state.find("\"shuffle_seed\""));
  const std::string seed = seed_field.substr(0, seed_field.find(',') + 1);
  for (const char* bad : {R"("shuffle_seed":"abc",)", R"("shuffle_seed":"99999999999999999999999",)",
                          R"("shuffle_seed":"-1",)", R"("shuffle_seed":12,)"}) {
    with(seed, bad);
    expect_error<IOError>([&] { resume(ckpt); }, {ckpt, "training_state.shuffle_seed"});
    set_metadata(ckpt, "training_state", state);
  }
  with(R"("epochs_done":1)", R"("epochs_done":1e300)");
  expect_error<IOError>([&] { resume(ckpt); }, {ckpt, "training_state.epochs_done"});
  with(R"("epochs_done":1)", R"("epochs_done_":1)");
  expect_error<IOError>([&] { resume(ckpt); }, {ckpt, "training_state.epochs_done: missing"});
  with(R"("rng_state":")", R"("rng_state":"x)");
  expect_error<IOError>([&] { resume(ckpt); }, {ckpt, "training_state.rng_state"});
  set_metadata(ckpt, "training_state", "[1, 2]");
  expect_error<IOError>([&] { resume(ckpt); }, {ckpt, "training_state"});
  set_metadata(ckpt, "training_state", "{\"epochs_done\": ");
  expect_error<IOError>([&] { resume(ckpt); }, {ckpt, "training_state", "not valid JSON"});
}

TEST(HostileModel, GarbageCallbackStateNamesTheCallback) {
  const fs::path dir = temp_dir("callback_state");
  const std::string ckpt = checkpoint_after(dir, 1);
  const io::TensorFile good = io::load_tensors(ckpt);
  for (const std::string& bad : {std::string("garbage"), std::string(R"({"best": 1})"),
                                 std::string(R"({"best": 1, "wait": -3, "best_epoch": 0})"),
                                 std::string(R"({"best": "x", "wait": 0, "best_epoch": 0})")}) {
    std::string s = good.metadata.at("training_state");
    const size_t at = s.find(R"("callbacks":{})");
    ASSERT_NE(at, std::string::npos) << s;
    std::string quoted = "\"";
    for (char c : bad) quoted += c == '"' ? std::string("\\\"") : std::string(1, c);
    s.replace(at, 14, R"("callbacks":{"0:EarlyStopping":)" + quoted + "\"}");
    set_metadata(ckpt, "training_state", s);
    expect_error<IOError>(
        [&] { resume(ckpt, {std::make_shared<EarlyStopping>(EarlyStoppingOptions{.monitor = "loss"})}); },
        {ckpt, "training_state.callbacks.0:EarlyStopping"});
  }
}

// ---- 3. numbers range-checked, sizes bounded before allocation --------------------------------

TEST(HostileModel, ConfigNumbersOutOfRangeNameTheField) {
  const fs::path dir = temp_dir("numbers");
  const std::string dense = "    - Dense: {units: 2}\n";
  expect_config_error(dir, config(dense, "fit: {epochs: 4294967297}\n"), {"fit.epochs: must be in [0, 2147483647]"});
  expect_config_error(dir, config(dense, "fit: {epochs: inf}\n"), {"fit.epochs: expected a finite number, got inf"});
  expect_config_error(dir, config(dense, "fit: {epochs: .inf}\n"), {"fit.epochs: expected a finite number, got .inf"});
  expect_config_error(dir, config(dense, "fit: {epochs: 1e300}\n"), {"fit.epochs: expected an integer"});
  expect_config_error(dir, config(dense, "fit: {verbose: 7}\n"), {"fit.verbose: must be in [0, 2], got 7"});
  expect_config_error(dir, config(dense, "fit: {batch_size: 0}\n"), {"fit.batch_size"});
  expect_config_error(dir, config(dense, "fit: {callbacks: [EarlyStopping: {patience: 4294967296}]}\n"),
                      {"fit.callbacks[0].EarlyStopping.patience: must be in"});
  expect_config_error(dir, config(dense, "compile: {optimizer: {adam: {learning_rate: .nan}}}\n"),
                      {"compile.optimizer.adam.learning_rate: expected a finite number, got .nan"});
  // The constructors' own range checks name the field's path too.
  expect_config_error(dir, config(dense, "fit: {callbacks: [ReduceLROnPlateau: {factor: 2}]}\n"),
                      {"fit.callbacks[0].ReduceLROnPlateau.factor: must be in [0.0, 1.0], got 2.0"});
  expect_config_error(dir, config(dense, "compile: {optimizer: {adam: {beta_2: 5}}}\n"),
                      {"compile.optimizer.adam.beta_2: must be in [0.0, 1.0], got 5.0"});
  // Non-finite numbers read from JSON (1e400 parses as infinity) name the field too, as inf/nan.
  io::ConfigReader r(nlohmann::json{{"x", std::nan("")}, {"y", 1e308 * 10}}, "m.safetensors: compile");
  expect_error<ValueError>([&] { r.get_int("x", 0); }, {"m.safetensors: compile.x: expected an integer, got nan"});
  expect_error<ValueError>([&] { r.get_double("y", 0); }, {"compile.y: expected a finite number, got inf"});
}

TEST(HostileModel, RescaleMustBeFinite) {
  const fs::path dir = temp_dir("rescale");
  for (const std::string factor : {".nan", ".inf", "-.inf", "nan", "inf", ".NaN"}) {
    const std::string text = "data:\n  train: x.csv\n  preprocess: [rescale: " + factor +
                             "]\nmodel:\n  input_shape: [4]\n  layers: [Dense: {units: 2}]\n";
    expect_config_error(dir, text, {"data.preprocess[0].rescale: expected a finite number, got " + factor});
  }
  expect_error<ValueError>([] { data::Pipeline::from_config(R"([{"rescale": {"factor": 1e400}}])", "p"); },
                           {"p: not valid JSON", "1e400"});
}

TEST(HostileModel, LayerNumbersOutOfRangeNameTheLayerField) {
  const fs::path dir = temp_dir("layers");
  const std::string conv = "data:\n  train: x.csv\nmodel:\n  input_shape: [28, 28, 1]\n  layers:\n";
  expect_config_error(dir, conv + "    - Conv2D: {filters: 2, kernel_size: 3, strides: 0}\n",
                      {"model.layers[0].Conv2D.strides: must be in [1, 65536], got 0"});
  expect_config_error(dir, conv + "    - Conv2D: {filters: 2, kernel_size: 3, strides: 9223372036854775807}\n",
                      {"model.layers[0].Conv2D.strides: must be in"});
  expect_config_error(dir, conv + "    - Conv2D: {filters: 2, kernel_size: 3, strides: 18446744073709551615}\n",
                      {"model.layers[0].Conv2D.strides: expected an integer"});
  expect_config_error(dir, conv + "    - Conv2D: {filters: 2305843009213693952, kernel_size: 3}\n",
                      {"model.layers[0].Conv2D.filters: must be in"});
  expect_config_error(dir, conv + "    - Conv2D: {filters: 2, kernel_size: 3, dilation_rate: 1000000000, padding: same}\n",
                      {"model.layers[0].Conv2D.dilation_rate: must be in"});
  expect_config_error(dir, conv + "    - Conv2D: {filters: 2, kernel_size: 3, dilation_rate: 20, padding: same}\n",
                      {"Conv2D 'conv2d'", "spans 41x41 pixels, more than the 28x28 input"});
  expect_config_error(dir, conv + "    - MaxPooling2D: {pool_size: 0}\n", {"model.layers[0].MaxPooling2D.pool_size"});
  expect_config_error(dir, config("    - Dense: {units: 2305843009213693952}\n"),
                      {"model.layers[0].Dense.units: must be in [1, 2147483648]"});
  expect_config_error(dir, config("    - Dense: {units: 1e12}\n"), {"model.layers[0].Dense.units: must be in"});
  expect_config_error(dir, config("    - Dense: {units: .nan}\n"), {"model.layers[0].Dense.units: expected a finite number, got .nan"});
  expect_config_error(dir, config("    - Dropout: {rate: .nan}\n"), {"model.layers[0].Dropout.rate: expected a finite number, got .nan"});
  // Each size is allowed, but the weights they make are not.
  expect_config_error(dir, config("    - Dense: {units: 1000000000}\n"),
                      {"Dense 'dense'", "5e+09 parameters", "limit of 2147483648"});
  expect_config_error(dir, "data:\n  train: x.csv\nmodel:\n  input_shape: [1000000000]\n  layers: [Dense: {units: 10}]\n",
                      {"Dense 'dense'", "1e+10 parameters"});
  expect_config_error(dir, "data:\n  train: x.csv\nmodel:\n  input_shape: [100000000000]\n  layers: [Dense: {units: 1}]\n",
                      {"model.input_shape: must be in"});
  expect_config_error(dir, "data:\n  train: x.csv\nmodel:\n  input_shape: [65536, 65536]\n  layers: [Dropout: {rate: 0.1}]\n",
                      {"Dropout 'dropout'", "values per sample"});
}

TEST(HostileModel, LibraryLayersRefuseHugeSizes) {
  expect_error<ValueError>([] { Dense(int64_t{1} << 61); }, {"Dense: units must be in"});
  expect_error<ValueError>([] { Conv2D(2, 3, {.strides = 0}); }, {"Conv2D: strides"});
  expect_error<ValueError>([] { Conv2D(int64_t{1} << 61, 3); }, {"Conv2D: filters"});
  expect_error<ShapeError>([] { Sequential({Dense(1 << 20, {.input_shape = {1 << 20}})}); },
                           {"Dense 'dense'", "parameters"});
  // A layer's planned weights are exactly what build() makes.
  Sequential model({Conv2D(4, 3, {.input_shape = {2, 8, 8}, .padding = "same"}), BatchNormalization(),
                    MaxPooling2D(2), Flatten(), LayerNormalization(), Dense(3), Embedding(5, 2)});
  std::map<std::string, Shape> built;
  for (const auto& [name, t] : model.state_dict()) built[name] = t.shape();
  EXPECT_EQ(model.planned_state({2, 8, 8}), built);
}

// ---- 4. shapes checked against the stored tensors before allocating ---------------------------

TEST(HostileModel, ArchitectureMustMatchStoredShapesBeforeAllocating) {
  const fs::path dir = temp_dir("shapes");
  const std::string path = (dir / "m.safetensors").string();
  save_model(path, compiled_model());
  const std::string arch = io::load_tensors(path).metadata.at("architecture");
  std::string huge = arch;
  const size_t at = huge.find("\"units\":8");
  ASSERT_NE(at, std::string::npos) << arch;
  huge.replace(at, 9, "\"units\":100000000");
  set_metadata(path, "architecture", huge);
  const auto start = std::chrono::steady_clock::now();
  expect_error<IOError>([&] { load_model(path); },
                        {path, "tensor 'dense.bias' has shape (8,) in the file, but the architecture "
                               "makes it (100000000,)"});
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
}

// ---- 5. building is linear in the number of layers, which is bounded -------------------------

TEST(HostileModel, TenThousandLayersBuildFastAndMoreAreRefused) {
  const fs::path dir = temp_dir("many");
  std::vector<AnyLayer> layers{Dense(2, {.input_shape = {4}})};
  for (int i = 0; i < 9999; ++i) layers.emplace_back(Dropout(0.1));
  auto start = std::chrono::steady_clock::now();
  Sequential model(layers);
  const std::string path = (dir / "m.safetensors").string();
  save_model(path, model);
  const Model loaded = load_model(path).model;
  EXPECT_EQ(loaded.layers().size(), 10000u);
  EXPECT_EQ(loaded.layers().back()->name(), "dropout_9998");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);

  std::string yaml = "data:\n  train: x.csv\nmodel:\n  input_shape: [4]\n  layers:\n";
  for (int i = 0; i < 10000; ++i) yaml += "    - Dropout: {rate: 0.1}\n";
  write(dir / "c.yaml", yaml);
  start = std::chrono::steady_clock::now();
  EXPECT_NO_THROW(cli::load_experiment((dir / "c.yaml").string()));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
  write(dir / "c.yaml", yaml + "    - Dropout: {rate: 0.1}\n");
  expect_error<ValueError>([&] { cli::load_experiment((dir / "c.yaml").string()); },
                           {"c.yaml", "model.layers: 10001 layers, more than the limit of 10000"});
  expect_error<ValueError>([&] { model.add(Dropout(0.1)); }, {"more than 10000 layers"});
}

TEST(HostileModel, DefaultNamesStillSkipNamesInUse) {
  Sequential model({Dense(2, {.input_shape = {4}}), Dense(2, {.name = "dense_2"}), Dense(2), Dense(2)});
  EXPECT_EQ(model.layers()[2]->name(), "dense_1");
  EXPECT_EQ(model.layers()[3]->name(), "dense_3");
}

// ---- 6. YAML size and alias expansion bounded -------------------------------------------------

TEST(HostileModel, YamlBombsAndHugeFilesAreRefused) {
  const fs::path dir = temp_dir("yaml");
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    const char prev = static_cast<char>(c - 1);
    bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
            ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n";
  }
  ASSERT_LT(bomb.size(), 1000u);
  expect_config_error(dir, bomb, {"more than 100000 values once aliases are expanded"});
  expect_config_error(dir, "data: " + std::string(100, '[') + std::string(100, ']') + "\n",
                      {"nested deeper than 64 levels"});
  std::string big = config("    - Dense: {units: 2}\n");
  big += "# " + std::string(size_t{1} << 20, 'x') + "\n";
  write(dir / "big.yaml", big);
  expect_error<IOError>([&] { cli::load_experiment((dir / "big.yaml").string()); },
                        {"big.yaml", "larger than the limit of 1048576 bytes"});
}

// ---- 7. silent guesses ------------------------------------------------------------------------

TEST(HostileModel, SavedPreprocessingIsCheckedField_by_Field) {
  expect_error<IOError>([] { data::Pipeline::from_saved(R"([{"kind": "rotate"}])", "m.safetensors"); },
                        {"m.safetensors: preprocessing[0].kind: unknown preprocessing step 'rotate'"});
  expect_error<IOError>([] { data::Pipeline::from_saved(R"([{"kind": "rescale"}])", "m.safetensors"); },
                        {"m.safetensors: preprocessing[0].factor: missing required field"});
  expect_error<IOError>(
      [] { data::Pipeline::from_saved(R"([{"kind": "rescale", "factor": 2, "extra": 1}])", "m"); },
      {"m: preprocessing[0]: unknown field 'extra'"});
  expect_error<IOError>(
      [] { data::Pipeline::from_saved(R"([{"kind": "standardize", "shape": [2], "mean": [0], "std": [1, 1]}])", "m"); },
      {"m: preprocessing[0]", "needs 2 values"});
  expect_error<IOError>([] { data::Pipeline::from_saved(R"({"kind": "rescale"})", "m"); },
                        {"m: preprocessing: expected a list"});
  // A zero standard deviation divides by 1, as scikit-learn's StandardScaler does.
  const data::Pipeline p = data::Pipeline::from_saved(
      R"([{"kind": "standardize", "shape": [2], "mean": [1, 2], "std": [0, 2]}])", "m");
  neutrino::testing::expect_values(p.apply_x(Tensor::of({{3.0f, 6.0f}})), {2.0, 2.0});
}

// Found by fuzz/fuzz_pipeline.cpp: saved statistics are float32, so a finite double beyond its
// range became an infinite mean (which the next save wrote as null), and a standard deviation too
// small for it became 0 (which the next load read as 1). The first is refused; the second is read
// as 1 at once, so that loading, saving and loading again gives the same pipeline.
TEST(HostileModel, SavedStatisticsOutsideFloat32AreRefusedOrReadAsTheyWillBeSaved) {
  expect_error<IOError>(
      [] { data::Pipeline::from_saved(R"([{"kind": "standardize", "shape": [1], "mean": [1e300], "std": [1]}])", "m"); },
      {"m: preprocessing[0].mean: 1e+300 is beyond float32's range"});
  expect_error<IOError>(
      [] { data::Pipeline::from_saved(R"([{"kind": "standardize", "shape": [1], "mean": [0], "std": [-1e39]}])", "m"); },
      {"m: preprocessing[0].std: a standard deviation must be >= 0"});
  expect_error<IOError>(
      [] { data::Pipeline::from_saved(R"([{"kind": "standardize", "shape": [1], "mean": [0], "std": [1e39]}])", "m"); },
      {"m: preprocessing[0].std", "beyond float32's range"});
  const data::Pipeline p = data::Pipeline::from_saved(
      R"([{"kind": "standardize", "shape": [2], "mean": [1, 2], "std": [1e-300, 2]}])", "m");
  neutrino::testing::expect_values(p.apply_x(Tensor::of({{3.0f, 6.0f}})), {2.0, 2.0});
  const std::string saved = p.to_saved();
  EXPECT_EQ(data::Pipeline::from_saved(saved, "again").to_saved(), saved);
}

TEST(HostileModel, NonFiniteWeightsAreRefusedNamingTheTensor) {
  const fs::path dir = temp_dir("nan");
  const std::string path = (dir / "m.safetensors").string();
  save_model(path, compiled_model());
  Tensor bad = clone(io::load_tensors(path).tensors.at("dense_1.weight"));
  bad.data<float>()[3] = std::nanf("");
  set_tensor(path, "dense_1.weight", bad);
  expect_error<IOError>([&] { load_model(path); }, {path, "tensor 'dense_1.weight' holds NaN or infinite values"});
}

TEST(HostileModel, StandardizeMessageSaysWhatTheSamplesAre) {
  const data::Standardizer s = data::Standardizer::fit(Tensor::ones({3, 4}));
  expect_error<ShapeError>([&] { s.apply(Tensor::ones({4})); },
                           {"fitted on samples of shape (4,), but the input (4,) holds 4 samples of shape ()"});
}

// ---- 8. resume after EarlyStopping; optimizer state checked -----------------------------------

namespace {
// EarlyStopping that stops at the third epoch (the loss falls, and mode max calls that worse) and
// restores the first epoch's weights.
std::vector<CallbackPtr> stopping_callbacks() {
  return {std::make_shared<EarlyStopping>(EarlyStoppingOptions{
      .monitor = "loss", .patience = 1, .mode = "max", .restore_best_weights = true})};
}

Sequential fit_stopping(int epochs, const std::string& checkpoint, const std::string& resume_from,
                        History* history = nullptr) {
  auto [x, y] = blobs(32);
  Sequential model = compiled_model();
  const History h = model.fit(x, y, {.epochs = epochs, .batch_size = 8, .shuffle = false, .verbose = 0,
                                     .callbacks = stopping_callbacks(), .seed = 5,
                                     .checkpoint_path = checkpoint, .resume_from = resume_from});
  if (history != nullptr) *history = h;
  return model;
}
}  // namespace

TEST(HostileModel, ResumeRestoresTheBestWeightsFromTheCheckpoint) {
  const fs::path dir = temp_dir("best");
  History straight_history;
  const Sequential straight = fit_stopping(10, "", "", &straight_history);
  ASSERT_EQ(straight_history.epochs, 3);  // stopped early, with the first epoch's weights
  const std::string ckpt = (dir / "ckpt.safetensors").string();
  fit_stopping(2, ckpt, "");  // interrupted before the stop
  const Sequential resumed = fit_stopping(10, "", ckpt);
  EXPECT_EQ(flat_weights(straight), flat_weights(resumed));
}

TEST(HostileModel, ResumingARunThatStoppedTrainsNoFurther) {
  const fs::path dir = temp_dir("stopped");
  const std::string ckpt = (dir / "ckpt.safetensors").string();
  const Sequential straight = fit_stopping(10, ckpt, "");
  History history;
  const Sequential resumed = fit_stopping(10, (dir / "again.safetensors").string(), ckpt, &history);
  EXPECT_EQ(history.epochs, 3);
  EXPECT_EQ(flat_weights(straight), flat_weights(resumed));
  EXPECT_FALSE(fs::exists(dir / "again.safetensors"));  // nothing trained, nothing written
}

TEST(HostileModel, OptimizerStateIsValidatedOnResume) {
  const fs::path dir = temp_dir("adam");
  const std::string ckpt = checkpoint_after(dir, 1);
  const io::TensorFile good = io::load_tensors(ckpt);
  auto expect_refused = [&](const std::string& name, const Tensor& value, const std::string& what) {
    set_tensor(ckpt, name, value);
    expect_error<IOError>([&] { resume(ckpt); }, {ckpt, what});
    io::save_tensors(ckpt, good.tensors, good.metadata);
  };
  const Tensor v = good.tensors.at("optimizer/v.0");
  expect_refused("optimizer/v.0", neg(add(v, 1.0)), "'v.0' holds negative values");
  Tensor nan_m = clone(good.tensors.at("optimizer/m.0"));
  nan_m.data<float>()[0] = std::nanf("");
  expect_refused("optimizer/m.0", nan_m, "NaN or infinite");
  expect_refused("optimizer/m.0", Tensor::zeros({3}), "'m.0' has shape (3,)");
  expect_refused("optimizer/m.99", Tensor::zeros({3}), "'m.99' names no parameter");
  expect_refused("optimizer/m.x", Tensor::zeros({3}), "'m.x' names no parameter");
  expect_refused("optimizer/bogus.0", Tensor::zeros({3}), "unknown entry 'bogus.0'");
  expect_refused("optimizer/iterations", Tensor::from_vector(std::vector<int64_t>{-4}, {1}),
                 "'iterations' must be >= 0");
  expect_refused("optimizer/iterations", Tensor::zeros({2}), "'iterations' must be one int64");
  EXPECT_NO_THROW(resume(ckpt));
}
