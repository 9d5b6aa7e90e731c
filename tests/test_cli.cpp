// End-to-end runs of bin/neutrino: the workflow on small real data, and bad input of every kind
// ending in a clear message and a non-zero exit, never a crash.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "neutrino/data/npy.h"
#include "neutrino/tensor/tensor.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {
using neutrino::testing::CliResult;
using neutrino::testing::run_cli;

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("neutrino_cli_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

const std::string kXorCsv = std::string(NEUTRINO_SOURCE_DIR) + "/configs/data/xor.csv";

std::string xor_config(const std::string& layers) {
  return "seed: 42\ndata:\n  train: {csv: " + kXorCsv + ", label: y}\n  test: {csv: " + kXorCsv +
         ", label: y}\nmodel:\n  input_shape: [2]\n  layers:\n" + layers +
         "compile:\n  optimizer: {adam: {learning_rate: 0.1}}\n  loss: binary_crossentropy\n"
         "  metrics: [accuracy]\nfit:\n  epochs: 300\n  batch_size: 4\n  verbose: 0\n";
}
const std::string kXorLayers =
    "    - Dense: {units: 3, activation: sigmoid}\n    - Dense: {units: 1, activation: sigmoid}\n";
}  // namespace

TEST(Cli, TrainEvalPredictSummaryOnXor) {
  const fs::path dir = temp_dir("xor");
  write(dir / "xor.yaml", xor_config(kXorLayers));
  const std::string model = (dir / "xor.safetensors").string();
  CliResult train = run_cli("train " + (dir / "xor.yaml").string() + " -o " + model + " --epochs 1000");
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_NE(train.output.find("accuracy: 1.0000"), std::string::npos) << train.output;
  EXPECT_TRUE(fs::exists(dir / "xor.ckpt.safetensors"));

  CliResult eval = run_cli("eval " + model + " --data " + kXorCsv + " --json");
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("\"accuracy\":1.0"), std::string::npos) << eval.output;
  EXPECT_NE(eval.output.find("\"macro_f1\":1.0"), std::string::npos) << eval.output;

  write(dir / "inputs.csv", "x1,x2\n0,1\n1,1\n");
  CliResult predict = run_cli("predict " + model + " --input " + (dir / "inputs.csv").string() +
                                " --output " + (dir / "out.npy").string());
  ASSERT_EQ(predict.code, 0) << predict.output;
  const auto out = neutrino::data::read_npy((dir / "out.npy").string()).to_vector<float>();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_GT(out[0], 0.5f);
  EXPECT_LT(out[1], 0.5f);

  CliResult summary = run_cli("summary " + model);
  ASSERT_EQ(summary.code, 0) << summary.output;
  EXPECT_NE(summary.output.find("Total params: 13"), std::string::npos) << summary.output;
  EXPECT_EQ(run_cli("summary " + (dir / "xor.yaml").string()).code, 0);
  EXPECT_EQ(run_cli("train --help").code, 0);
}

TEST(Cli, ResumeFromCheckpointMatchesStraightRun) {
  const fs::path dir = temp_dir("resume");
  write(dir / "xor.yaml", xor_config(kXorLayers));
  const std::string cfg = (dir / "xor.yaml").string();
  ASSERT_EQ(run_cli("train " + cfg + " -o " + (dir / "straight.safetensors").string() + " --epochs 40").code, 0);
  ASSERT_EQ(run_cli("train " + cfg + " -o " + (dir / "half.safetensors").string() + " --epochs 20").code, 0);
  ASSERT_EQ(run_cli("train " + cfg + " -o " + (dir / "resumed.safetensors").string() +
                         " --epochs 40 --resume " + (dir / "half.ckpt.safetensors").string()).code, 0);
  std::ifstream a(dir / "straight.safetensors", std::ios::binary), b(dir / "resumed.safetensors", std::ios::binary);
  const std::string bytes_a((std::istreambuf_iterator<char>(a)), {}), bytes_b((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(bytes_a, bytes_b);  // weights and metadata identical
}

TEST(Cli, BadConfigsNameTheField) {
  const fs::path dir = temp_dir("config");
  struct Case {
    std::string layers, expected;
  };
  for (const Case& c : {Case{"    - Dense: {units: 3}\n    - Densse: {units: 1}\n", "model.layers[1]: unknown layer 'Densse'"},
                        Case{"    - Dense: {units: ten}\n", "model.layers[0].Dense.units: expected an integer"},
                        Case{"    - Dense: {unitz: 3}\n", "model.layers[0].Dense.units: missing required field"}}) {
    write(dir / "bad.yaml", xor_config(c.layers));
    const CliResult r = run_cli("train " + (dir / "bad.yaml").string());
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("bad.yaml"), std::string::npos) << r.output;
  }
  write(dir / "typo.yaml", xor_config(kXorLayers) + "fitt: {}\n");
  CliResult r = run_cli("train " + (dir / "typo.yaml").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("unknown field 'fitt'"), std::string::npos) << r.output;
  write(dir / "syntax.yaml", "model: [unclosed\n");
  r = run_cli("train " + (dir / "syntax.yaml").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("invalid YAML"), std::string::npos) << r.output;
  EXPECT_EQ(run_cli("train").code, 2);  // usage
}

TEST(Cli, CorruptDataFilesAreRefusedWithFileAndPlace) {
  const fs::path dir = temp_dir("data");
  write(dir / "xor.yaml", xor_config(kXorLayers));
  const std::string model = (dir / "m.safetensors").string();
  ASSERT_EQ(run_cli("train " + (dir / "xor.yaml").string() + " -o " + model + " --epochs 5").code, 0);

  write(dir / "ragged.csv", "x1,x2,y\n0,0,0\n0,1\n");
  CliResult r = run_cli("eval " + model + " --data " + (dir / "ragged.csv").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("ragged.csv:3"), std::string::npos) << r.output;

  write(dir / "words.csv", "x1,x2,y\n0,zero,0\n");
  r = run_cli("eval " + model + " --data " + (dir / "words.csv").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("words.csv:2"), std::string::npos) << r.output;

  // An IDX header promising 10 images of 28x28, with 3 bytes of data.
  write(dir / "images-idx3-ubyte", std::string("\0\0\x08\x03\0\0\0\x0a\0\0\0\x1c\0\0\0\x1cxyz", 19));
  r = run_cli("predict " + model + " --input " + (dir / "images-idx3-ubyte").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("images-idx3-ubyte"), std::string::npos) << r.output;

  // An object-dtype NPY (would need unpickling).
  std::string header = "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }";
  header += std::string(64 - (10 + header.size() + 1) % 64, ' ') + "\n";
  std::string npy = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size() & 0xff) +
                    static_cast<char>(header.size() >> 8) + header + std::string(16, '\0');
  write(dir / "object.npy", npy);
  r = run_cli("predict " + model + " --input " + (dir / "object.npy").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("object.npy"), std::string::npos) << r.output;

  // A model file with a broken header, and one with a flipped weight bit.
  std::ifstream in(model, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::string bad_header = bytes;
  bad_header[9] = '[';
  write(dir / "bad_header.safetensors", bad_header);
  r = run_cli("eval " + (dir / "bad_header.safetensors").string() + " --data " + kXorCsv);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("bad_header.safetensors"), std::string::npos) << r.output;
  std::string flipped = bytes;
  flipped[flipped.size() - 2] ^= 0x10;
  write(dir / "flipped.safetensors", flipped);
  r = run_cli("eval " + (dir / "flipped.safetensors").string() + " --data " + kXorCsv);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("checksum"), std::string::npos) << r.output;
  write(dir / "short.safetensors", bytes.substr(0, bytes.size() / 2));
  EXPECT_EQ(run_cli("summary " + (dir / "short.safetensors").string()).code, 1);
}
