// Hostile model files and configs through bin/neutrino: one error line naming the file and the
// field, exit 1, never an abort (exit 134), a signal or a hang.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "neutrino/io/tensor_file.h"
#include "neutrino/train/model_file.h"
#include "test_util.h"

namespace fs = std::filesystem;
using neutrino::testing::CliResult;
using neutrino::testing::run_cli;

namespace {
fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("neutrino_hostile_cli_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

const std::string kXorCsv = std::string(NEUTRINO_SOURCE_DIR) + "/configs/data/xor.csv";

std::string xor_config(const std::string& fit) {
  return "seed: 42\ndata:\n  train: {csv: " + kXorCsv + ", label: y}\nmodel:\n  input_shape: [2]\n"
         "  layers:\n    - Dense: {units: 3, activation: sigmoid}\n    - Dense: {units: 1, activation: sigmoid}\n"
         "compile:\n  optimizer: {adam: {learning_rate: 0.1}}\n  loss: binary_crossentropy\n"
         "  metrics: [accuracy]\nfit:\n  batch_size: 4\n  verbose: 0\n" + fit;
}

// Trains the XOR model for a few epochs; returns the model file's path.
std::string trained_model(const fs::path& dir) {
  write(dir / "xor.yaml", xor_config("  epochs: 3\n"));
  const std::string model = (dir / "m.safetensors").string();
  const CliResult r = run_cli("train " + (dir / "xor.yaml").string() + " -o " + model);
  EXPECT_EQ(r.code, 0) << r.output;
  return model;
}

void set_metadata(const std::string& path, const std::string& key, const std::string& value) {
  neutrino::io::TensorFile file = neutrino::io::load_tensors(path);
  file.metadata[key] = value;
  neutrino::io::save_tensors(path, file.tensors, file.metadata);
}

void expect_one_error_line(const CliResult& r, const std::vector<std::string>& parts) {
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_EQ(r.output.find("terminate"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  for (const auto& part : parts) EXPECT_NE(r.output.find(part), std::string::npos) << part << " not in " << r.output;
}
}  // namespace

TEST(HostileCli, MalformedCompileMetadataIsAnErrorNotAnAbort) {
  const fs::path dir = temp_dir("compile");
  const std::string model = trained_model(dir);
  const std::string good = neutrino::io::load_tensors(model).metadata.at("compile");
  struct Case {
    std::string compile, expected;
  };
  for (const Case& c : {Case{R"({"loss": )", "not valid JSON"},
                        Case{R"({"loss": "binary_crossentropy"})", ""},
                        Case{R"({"loss": "binary_crossentropy", "metrics": "accuracy"})",
                             "compile.metrics: expected a list of strings"},
                        Case{R"({"loss": "binary_crossentropy", "metrics": [3]})", "compile.metrics[0]: expected a string"},
                        Case{R"({"loss": "binary_crossentropy", "metrics": ["acurracy"]})", "compile.metrics[0]"},
                        Case{R"({"metrics": []})", "compile.loss: missing required field"},
                        Case{R"([1, 2])", "compile: expected a map of options"},
                        Case{R"({"loss": "binary_crossentropy", "metrics": [], "x": 1})", "compile: unknown field 'x'"}}) {
    set_metadata(model, "compile", c.compile);
    const CliResult r = run_cli("eval " + model + " --data " + kXorCsv);
    if (c.expected.empty()) {
      EXPECT_EQ(r.code, 0) << r.output;  // no metrics: the loss alone
      continue;
    }
    expect_one_error_line(r, {"m.safetensors", c.expected});
  }
  set_metadata(model, "compile", good);
  EXPECT_EQ(run_cli("eval " + model + " --data " + kXorCsv).code, 0);
}

TEST(HostileCli, DeeplyNestedArchitectureIsAnError) {
  const fs::path dir = temp_dir("deep");
  const std::string model = trained_model(dir);
  set_metadata(model, "architecture", std::string(100000, '[') + std::string(100000, ']'));
  write(dir / "in.csv", "x1,x2\n0,1\n");
  const CliResult r = run_cli("predict " + model + " --input " + (dir / "in.csv").string());
  expect_one_error_line(r, {"m.safetensors: architecture: nested deeper than 64 levels"});
}

TEST(HostileCli, HugeLayerInAModelFileIsRefusedBeforeAllocating) {
  const fs::path dir = temp_dir("huge");
  const std::string model = trained_model(dir);
  std::string arch = neutrino::io::load_tensors(model).metadata.at("architecture");
  const size_t at = arch.find("\"units\":3");
  ASSERT_NE(at, std::string::npos) << arch;
  for (const std::string units : {"100000000", "2305843009213693952", "1e12"}) {
    std::string huge = arch;
    huge.replace(at, 9, "\"units\":" + units);
    set_metadata(model, "architecture", huge);
    const CliResult r = run_cli("summary " + model);
    expect_one_error_line(r, {"m.safetensors: architecture"});
    EXPECT_NE(r.output.find(units == "100000000" ? "in the file, but the architecture makes it" : ".units"),
              std::string::npos) << r.output;
  }
}

TEST(HostileCli, BadResumeCheckpointsAreErrors) {
  const fs::path dir = temp_dir("resume");
  write(dir / "xor.yaml", xor_config("  epochs: 2\n"));
  const std::string cfg = (dir / "xor.yaml").string();
  ASSERT_EQ(run_cli("train " + cfg + " -o " + (dir / "m.safetensors").string()).code, 0);
  const std::string ckpt = (dir / "m.ckpt.safetensors").string();
  const std::string state = neutrino::io::load_tensors(ckpt).metadata.at("training_state");
  const size_t at = state.find("\"shuffle_seed\":\"");
  ASSERT_NE(at, std::string::npos) << state;
  const size_t end = state.find('"', at + 16);
  for (const std::string seed : {"abc", "99999999999999999999999"}) {
    set_metadata(ckpt, "training_state", state.substr(0, at + 16) + seed + state.substr(end));
    const CliResult r = run_cli("train " + cfg + " -o " + (dir / "r.safetensors").string() + " --epochs 4 --resume " + ckpt);
    expect_one_error_line(r, {"m.ckpt.safetensors: training_state.shuffle_seed"});
    EXPECT_FALSE(fs::exists(dir / "r.safetensors"));
  }
}

TEST(HostileCli, ResumingAnEarlyStoppedRunKeepsItsResult) {
  const fs::path dir = temp_dir("stopped");
  // The loss falls, which mode max calls worse: stops after epoch 3, back to epoch 1's weights.
  write(dir / "xor.yaml", xor_config("  epochs: 50\n  callbacks:\n    - EarlyStopping: {monitor: loss, mode: max, "
                                     "patience: 1, restore_best_weights: true}\n"));
  const std::string cfg = (dir / "xor.yaml").string();
  const std::string model = (dir / "m.safetensors").string();
  ASSERT_EQ(run_cli("train " + cfg + " -o " + model).code, 0);
  std::ifstream a(model, std::ios::binary);
  const std::string first((std::istreambuf_iterator<char>(a)), {});
  const CliResult r = run_cli("train " + cfg + " -o " + model + " --verbose 2 --resume " +
                              (dir / "m.ckpt.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("training had already stopped after epoch 3"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 4/50"), std::string::npos) << r.output;
  std::ifstream b(model, std::ios::binary);
  const std::string second((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(first, second);
}

TEST(HostileCli, ConfigErrorsNameTheFileAndField) {
  const fs::path dir = temp_dir("config");
  struct Case {
    std::string fit, expected;
  };
  for (const Case& c : {Case{"  epochs: 4294967297\n", "fit.epochs: must be in [0, 2147483647]"},
                        Case{"  epochs: inf\n", "fit.epochs: expected a finite number, got inf"},
                        Case{"  epochs: 2\n  callbacks: [EarlyStopping: {patience: 4294967296}]\n",
                             "fit.callbacks[0].EarlyStopping.patience"}}) {
    write(dir / "bad.yaml", xor_config(c.fit));
    const CliResult r = run_cli("train " + (dir / "bad.yaml").string() + " -o " + (dir / "x.safetensors").string());
    expect_one_error_line(r, {"bad.yaml", c.expected});
  }
  write(dir / "bad.yaml", xor_config("  epochs: 1\n").replace(xor_config("").find("  verbose: 0"), 12, "  verbose: 7"));
  expect_one_error_line(run_cli("train " + (dir / "bad.yaml").string()), {"bad.yaml", "fit.verbose: must be in [0, 2], got 7"});
  write(dir / "conv.yaml", "data:\n  train: x.csv\nmodel:\n  input_shape: [28, 28, 1]\n  layers:\n"
                           "    - Conv2D: {filters: 2, kernel_size: 3, strides: 0}\n");
  expect_one_error_line(run_cli("summary " + (dir / "conv.yaml").string()),
                        {"conv.yaml", "model.layers[0].Conv2D.strides: must be in [1, 65536], got 0"});
}
