// The command line on text: train a text classifier from text files, eval it (--report, --json
// macro_f1), predict --text and --input lines.txt, `neutrino data`, and the bad inputs of
// issue 12 (invalid UTF-8, an empty corpus, an impossible vocabulary size, a record longer than
// max_length without truncation, --text on a model that does not read text).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "neutrino/core/random.h"
#include "neutrino/nn/losses.h"
#include "neutrino/ops/ops.h"
#include "test_util.h"

namespace neutrino {
namespace {

namespace fs = std::filesystem;
using testing::CliResult;
using testing::run_cli;

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Two classes that a character model separates at once: lines of vowels, lines of digits.
void write_corpus(const fs::path& dir) {
  std::string vowels, digits;
  Generator gen(3);
  for (int i = 0; i < 120; ++i) {
    for (int k = 0; k < 4 + static_cast<int>(gen.below(12)); ++k) {
      vowels += "aeiou "[gen.below(6)];
      digits += "0123456789 "[gen.below(11)];
    }
    vowels += "\n";
    digits += "\n";
  }
  write(dir / "vowels.txt", vowels);
  write(dir / "digits.txt", digits);
}

std::string text_config(const fs::path& dir, const std::string& tokenize, const std::string& model) {
  const std::string files =
      fmt::format("[{}, {}]", (dir / "vowels.txt").string(), (dir / "digits.txt").string());
  return fmt::format(
      "seed: 1\ndata:\n  train: {{text_files: {0}, split: train}}\n"
      "  test: {{text_files: {0}, split: test}}\n  preprocess:\n    - tokenize: {1}\nmodel:\n{2}"
      "compile:\n  optimizer: {{adam: {{learning_rate: 0.01}}}}\n"
      "  loss: sparse_categorical_crossentropy\n  metrics: [accuracy]\n"
      "fit:\n  epochs: 4\n  batch_size: 16\n  verbose: 0\n  bucket_by_length: true\n"
      "  class_weight: balanced\n",
      files, tokenize, model);
}

const std::string kLstmModel =
    "  input_shape: [24]\n  layers:\n"
    "    - Embedding: {input_dim: 32, output_dim: 8, mask_zero: true}\n"
    "    - LSTM: {units: 8}\n    - Dense: {units: 2, activation: softmax}\n";

class CliText : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_temp_dir("cli_text");
    write_corpus(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(CliText, TrainEvalPredictATextClassifier) {
  write(dir_ / "t.yaml", text_config(dir_, "{kind: char, max_length: 24}", kLstmModel));
  const CliResult train = run_cli("train " + path("t.yaml") + " -o " + path("t.safetensors"));
  ASSERT_EQ(train.code, 0) << train.output;
  const std::string files = "[" + path("vowels.txt") + ", " + path("digits.txt") + "]";
  const CliResult eval =
      run_cli("eval " + path("t.safetensors") + " --json --data '{text_files: " + files + ", split: test}'");
  ASSERT_EQ(eval.code, 0) << eval.output;
  const auto scores = nlohmann::json::parse(eval.output);
  EXPECT_GT(scores.at("macro_f1").get<double>(), 0.9) << eval.output;
  EXPECT_EQ(scores.at("samples").get<int>(), 24);  // 10% of 240 records
  const CliResult report =
      run_cli("eval " + path("t.safetensors") + " --report --data '{text_files: " + files + ", split: test}'");
  EXPECT_NE(report.output.find("vowels"), std::string::npos) << report.output;

  const CliResult one = run_cli("predict " + path("t.safetensors") + " --text '3141 5926'");
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find("0: digits"), std::string::npos) << one.output;
  write(dir_ / "lines.txt", "aeiou ia\n\n8675309\n");
  const CliResult lines = run_cli("predict " + path("t.safetensors") + " --input " + path("lines.txt"));
  ASSERT_EQ(lines.code, 0) << lines.output;
  EXPECT_NE(lines.output.find("0: vowels"), std::string::npos) << lines.output;
  EXPECT_NE(lines.output.find("1: digits"), std::string::npos) << lines.output;
}

TEST_F(CliText, DataWritesTheRecordsOfASplit) {
  const std::string spec = "'{text_files: [" + path("vowels.txt") + ", " + path("digits.txt") + "], split: test}'";
  const CliResult data = run_cli("data " + spec);
  ASSERT_EQ(data.code, 0) << data.output;
  int rows = 0;
  for (size_t at = 0; (at = data.output.find('\n', at)) != std::string::npos; ++at) ++rows;
  EXPECT_EQ(rows, 24);
  const auto first = nlohmann::json::parse(data.output.substr(0, data.output.find('\n')));
  EXPECT_TRUE(first.contains("text") && first.contains("label") && first.contains("class"));
}

TEST_F(CliText, BadTextInputIsOneLineAndExitOne) {
  const auto expect_refused = [&](const std::string& args, const std::vector<std::string>& parts) {
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    for (const std::string& part : parts) {
      EXPECT_NE(r.output.find(part), std::string::npos) << "'" << part << "' not in: " << r.output;
    }
  };
  write(dir_ / "bad.txt", "fine\nbroken \xc3\x28 here\n");
  write(dir_ / "bad.yaml", text_config(dir_, "{kind: char, max_length: 24}", kLstmModel));
  std::string cfg = text_config(dir_, "{kind: char, max_length: 24}", kLstmModel);
  const auto replace = [](std::string s, const std::string& from, const std::string& to) {
    for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) s.replace(at, from.size(), to);
    return s;
  };
  write(dir_ / "utf8.yaml", replace(cfg, path("vowels.txt"), path("bad.txt")));
  expect_refused("train " + path("utf8.yaml") + " -o " + path("m.safetensors"), {"bad.txt", "invalid UTF-8", "byte 12"});
  write(dir_ / "empty.txt", "\n \n");
  write(dir_ / "empty.yaml", replace(cfg, path("vowels.txt"), path("empty.txt")));
  expect_refused("train " + path("empty.yaml") + " -o " + path("m.safetensors"), {"empty.txt", "no records"});
  write(dir_ / "vocab.yaml", text_config(dir_, "{kind: bpe, vocab_size: 5000, max_length: 24}",
                                         replace(kLstmModel, "input_dim: 32", "input_dim: 5000")));
  expect_refused("train " + path("vocab.yaml") + " -o " + path("m.safetensors"), {"vocab_size"});
  write(dir_ / "long.yaml", text_config(dir_, "{kind: char, max_length: 6, truncate: false}",
                                        replace(kLstmModel, "[24]", "[6]")));
  expect_refused("train " + path("long.yaml") + " -o " + path("m.safetensors"), {"data.train", "max_length 6"});
  write(dir_ / "small.yaml", text_config(dir_, "{kind: char, max_length: 24}",
                                         replace(kLstmModel, "input_dim: 32", "input_dim: 5")));
  expect_refused("train " + path("small.yaml") + " -o " + path("m.safetensors"), {"Embedding", "input_dim 5"});

  // A model that reads numbers, not text.
  write(dir_ / "num.csv", "a,b,y\n0,1,0\n1,0,1\n1,1,0\n0,0,1\n");
  write(dir_ / "num.yaml", "data:\n  train: {csv: " + path("num.csv") + ", label: y}\nmodel:\n  input_shape: [2]\n"
        "  layers:\n    - Dense: {units: 2, activation: softmax}\nfit:\n  epochs: 1\n  verbose: 0\n");
  ASSERT_EQ(run_cli("train " + path("num.yaml") + " -o " + path("num.safetensors")).code, 0);
  expect_refused("predict " + path("num.safetensors") + " --text hello", {"--text", "not a text model"});
}

// Keras's class_weight: the training loss is the batch mean of weight[label] * loss.
TEST(ClassWeight, WeightsEachSamplesLossByItsClass) {
  const Tensor logits = Tensor::of({{2.0, -1.0, 0.5}, {0.1, 0.2, 0.3}, {-1.0, 3.0, 0.0}});
  const Tensor probs = softmax(logits, 1);
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 2, 1}, {3});
  const Tensor weights = Tensor::of({1.0, 4.0, 0.5});
  const auto logp = log_softmax(logits, 1).to_vector<float>();
  // sample 0: class 0 (weight 1); sample 1: class 2 (weight 0.5); sample 2: class 1 (weight 4)
  const double exact = -(1.0 * logp[0] + 0.5 * logp[5] + 4.0 * logp[7]) / 3.0;
  const nn::Loss from_logits("sparse_categorical_crossentropy", true);
  const nn::Loss from_probs("sparse_categorical_crossentropy", false);
  EXPECT_NEAR(from_logits.weighted(labels, logits, weights).item(), exact, 1e-5);
  EXPECT_NEAR(from_probs.weighted(labels, probs, weights).item(), exact, 1e-5);
  EXPECT_NEAR(from_logits.weighted(labels, logits, Tensor::ones({3})).item(),
              from_logits(labels, logits).item(), 1e-6);
  testing::expect_error<ShapeError>([&] { from_logits.weighted(labels, logits, Tensor::ones({2})); },
                                    {"class_weight", "2 weights"});
  testing::expect_error<ValueError>([&] { nn::Loss("mse").weighted(labels, logits, weights); },
                                    {"class_weight", "mean_squared_error"});
}

}  // namespace
}  // namespace neutrino
