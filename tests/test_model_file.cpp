// The model file's two halves: io's container (metadata fields and named tensors, no Model) and
// train's mapping of a Model onto it, with the metadata travelling beside the model; and the
// fitted preprocessing pipeline that such a file keeps, used from C++ without the CLI.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "neutrino/data/pipeline.h"
#include "neutrino/io/model_file.h"
#include "neutrino/neutrino.h"
#include "neutrino/train/model_file.h"
#include "test_util.h"

using namespace neutrino;
using neutrino::testing::expect_error;
namespace fs = std::filesystem;

namespace {
io::ModelFile container_contents() {
  io::ModelFile file;
  file.architecture = R"({"any": "text the container does not read"})";
  file.mixed_precision = Precision::kBFloat16;
  file.info = {.preprocessing = R"([{"kind":"one_hot"}])",
               .class_names = {"cat", "dog"},
               .extra = {{"trained_on", "pets.csv"}}};
  file.weights = {{"w", Tensor::of({1.0f, 2.0f})},
                  {"n", Tensor::from_vector(std::vector<int64_t>{3}, {1})}};
  return file;
}

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }
}  // namespace

TEST(ModelFileContainer, RoundTripsEveryFieldWithoutAModel) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("container");
  const std::string path = (dir / "m.safetensors").string();
  io::write_model_file(path, container_contents(), io::ModelFileKind::kModel);
  const io::ModelFile back = io::read_model_file(path, io::ModelFileKind::kModel);
  EXPECT_EQ(back.architecture, container_contents().architecture);
  EXPECT_EQ(back.mixed_precision, Precision::kBFloat16);
  EXPECT_EQ(back.info.preprocessing, R"([{"kind":"one_hot"}])");
  EXPECT_EQ(back.info.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(back.info.extra, (std::map<std::string, std::string>{{"trained_on", "pets.csv"}}));
  ASSERT_EQ(back.weights.size(), 2u);
  EXPECT_EQ(values(back.weights.at("w")), (std::vector<float>{1, 2}));
  // The checksum written is the one over the tensors as stored.
  const io::TensorFile raw = io::load_tensors(path);
  EXPECT_EQ(raw.metadata.at("checksum"), io::tensors_checksum(raw.tensors));
  EXPECT_EQ(raw.metadata.at("format"), "neutrino.model/1");
  // One kind is not the other.
  expect_error<IOError>([&] { io::read_model_file(path, io::ModelFileKind::kCheckpoint); },
                        {path, "not a neutrino.checkpoint/1 file (format 'neutrino.model/1')"});
  fs::remove_all(dir);
}

TEST(ModelFileContainer, CheckpointsKeepTrainingStateOptimizerAndCallbackTensors) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("container_ckpt");
  const std::string path = (dir / "c.safetensors").string();
  io::ModelFile file = container_contents();
  file.training = {.epochs_done = 2,
                   .shuffle_seed = 18446744073709551615u,  // past 2^53: written as text
                   .rng_state = Generator(3).state(),
                   .history = {{"loss", {0.5, std::nan("")}}},
                   .callback_states = {{"0:EarlyStopping", "{}"}},
                   .callback_tensors = {{"0:EarlyStopping", {{"w", Tensor::of({4.0f})}}}},
                   .optimizer = "adam",
                   .stopped = true};
  file.optimizer_state = {{"iterations", Tensor::from_vector(std::vector<int64_t>{7}, {1})}};
  io::write_model_file(path, file, io::ModelFileKind::kCheckpoint);
  EXPECT_EQ(io::load_tensors(path).tensors.count("optimizer/iterations"), 1u);
  EXPECT_EQ(io::load_tensors(path).tensors.count("callback/0:EarlyStopping/w"), 1u);

  const io::ModelFile back = io::read_model_file(path, io::ModelFileKind::kCheckpoint);
  EXPECT_EQ(back.weights.size(), 2u);  // the prefixed tensors are not weights
  EXPECT_EQ(back.optimizer_state.size(), 1u);
  EXPECT_EQ(back.training.epochs_done, 2);
  EXPECT_EQ(back.training.shuffle_seed, 18446744073709551615u);
  EXPECT_EQ(back.training.rng_state, file.training.rng_state);
  ASSERT_EQ(back.training.history.at("loss").size(), 2u);
  EXPECT_TRUE(std::isnan(back.training.history.at("loss")[1]));
  EXPECT_EQ(back.training.callback_states, file.training.callback_states);
  EXPECT_EQ(values(back.training.callback_tensors.at("0:EarlyStopping").at("w")),
            (std::vector<float>{4}));
  EXPECT_EQ(back.training.optimizer, "adam");
  EXPECT_TRUE(back.training.stopped);
  EXPECT_EQ(back.info.class_names, file.info.class_names);
  fs::remove_all(dir);
}

TEST(ModelFileContainer, FitWritesItsModelInfoIntoCheckpointsAndModelCheckpointFiles) {
  const fs::path dir = neutrino::testing::fresh_temp_dir("container_fit");
  const std::string ckpt = (dir / "run.ckpt.safetensors").string();
  const std::string best = (dir / "best.safetensors").string();
  manual_seed(3);
  train::Sequential model({nn::Dense(2, "softmax", {.input_shape = {3}})});
  model.compile("adam", "sparse_categorical_crossentropy");
  const Tensor x = Tensor::normal({8, 3});
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 1, 0, 1, 0, 1, 0, 1}, {8});
  const train::ModelInfo info{.class_names = {"no", "yes"}, .extra = {{"compile", "{}"}}};
  model.fit(x, y, {.epochs = 1, .verbose = 0,
                   .callbacks = {std::make_shared<train::ModelCheckpoint>(best)},
                   .checkpoint_path = ckpt, .model_info = info});
  EXPECT_EQ(train::load_model(best).info.class_names, info.class_names);
  EXPECT_EQ(train::load_model(best).info.extra, info.extra);
  EXPECT_EQ(train::load_checkpoint(ckpt, model).info.class_names, info.class_names);
  // Outside fit, the model carries no metadata of its own: save_model writes what it is given.
  train::save_model(best, model);
  EXPECT_TRUE(train::load_model(best).info.class_names.empty());
  fs::remove_all(dir);
}

TEST(ModelFileContainer, TheFirstFormatStillLoadsWithItsMetadata) {
  const std::string path =
      std::string(NEUTRINO_SOURCE_DIR) + "/tests/data/model_file_v1_cnn.safetensors";
  auto [model, info] = train::load_model(path);
  EXPECT_TRUE(model.built());
  EXPECT_EQ(info.extra.at("compile"),
            R"({"loss":"sparse_categorical_crossentropy","metrics":["accuracy"]})");
  const data::Pipeline pre = data::Pipeline::from_saved(info.preprocessing, path);
  ASSERT_EQ(pre.steps().size(), 2u);
  EXPECT_EQ(pre.steps()[0].kind, "rescale");
  EXPECT_EQ(pre.steps()[1].mean.shape(), Shape({16}));
}

TEST(DataPipeline, FitsAppliesAndRestoresWithoutTheCli) {
  const Tensor x = Tensor::of({{0.0f, 10.0f}, {4.0f, 30.0f}});
  data::Pipeline built = data::Pipeline().rescale(0.5).standardize().one_hot();
  data::Pipeline configured =
      data::Pipeline::from_config(R"([{"rescale": 0.5}, "standardize", {"one_hot": {}}])", "pre");
  built.fit(x);
  configured.fit(x);
  EXPECT_EQ(built.to_saved(), configured.to_saved());
  neutrino::testing::expect_values(built.apply_x(x), {-1, -1, 1, 1});
  const data::Pipeline restored = data::Pipeline::from_saved(built.to_saved(), "m.safetensors");
  EXPECT_EQ(values(restored.apply_x(x)), values(built.apply_x(x)));
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 0}, {2});
  EXPECT_EQ(restored.apply_y(labels, 2).shape(), Shape({2, 2}));
  EXPECT_FALSE(restored.augmenter());
  EXPECT_TRUE(data::Pipeline().random_flip().random_crop(1).augmenter());
  expect_error<ValueError>([] { data::Pipeline().rescale(std::nan("")); }, {"rescale", "finite"});
  expect_error<ValueError>([] { data::Pipeline().random_crop(-1); }, {"random_crop", ">= 0"});
  expect_error<ValueError>([] { data::Pipeline().standardize().apply_x(Tensor::ones({1, 2})); },
                           {"standardize: used before being fitted"});
}
