// The language-model commands end to end (issue 13): `neutrino import-weights` turns a state dict
// plus a config into a model file that equals the original, `neutrino generate` gives the tokens
// that nn::generate gives (cache on and off), `neutrino predict` writes the logits, and bad input
// is a one-line error with exit 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "neutrino/core/random.h"
#include "neutrino/data/npy.h"
#include "neutrino/data/text_datasets.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/io/tensor_file.h"
#include "neutrino/nn/gpt.h"
#include "neutrino/ops/ops.h"
#include "neutrino/train/language_model.h"
#include "test_util.h"

namespace neutrino {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

class CliLanguageModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_temp_dir("cli_lm");
    tokenizer_ = data::train_char_tokenizer(data::read_fortune_records(data::fortunes_dir() + "/science"));
    Generator g(5);
    GeneratorGuard guard(g);
    gpt_ = std::make_shared<nn::GPT>(nn::GPTOptions{.vocab_size = tokenizer_->vocab_size(),
                                                    .context = 32, .layers = 2, .heads = 2,
                                                    .d_model = 32});
    gpt_->eval();
    std::map<std::string, Tensor> state;
    for (const auto& [name, t] : gpt_->state_dict()) state.emplace(name, t);
    io::save_tensors(path("weights.safetensors"), state);
    std::ofstream(path("tokenizer.bin"), std::ios::binary) << tokenizer_->serialize();
    std::ofstream(path("gpt.yaml")) << "model:\n  GPT: {context: 32, layers: 2, heads: 2, d_model: 32}\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string import_model() const {
    const auto r = run_cli("import-weights " + path("weights.safetensors") + " --config " +
                           path("gpt.yaml") + " --tokenizer " + path("tokenizer.bin") + " -o " +
                           path("lm.safetensors"));
    EXPECT_EQ(r.code, 0) << r.output;
    return path("lm.safetensors");
  }

  fs::path dir_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::shared_ptr<nn::GPT> gpt_;
};

TEST_F(CliLanguageModel, ImportedWeightsEqualTheOriginal) {
  const auto loaded = train::load_language_model(import_model());
  EXPECT_EQ(testing::flat_weights(*loaded.model), testing::flat_weights(*gpt_));
  EXPECT_EQ(loaded.model->options().vocab_size, tokenizer_->vocab_size());
}

// PyTorch checkpoints are often bfloat16: they import as float32 holding the same values.
TEST_F(CliLanguageModel, Bfloat16WeightsImportAsFloat32) {
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : gpt_->state_dict()) {
    Tensor b = Tensor::empty(static_cast<const Tensor&>(t).shape(), DType::kBFloat16);
    b.copy_(t);
    state.emplace(name, b);
  }
  io::save_tensors(path("weights.safetensors"), state);
  const auto loaded = train::load_language_model(import_model());
  for (const auto& [name, t] : loaded.model->state_dict()) {
    const Tensor& w = t;
    EXPECT_EQ(w.dtype(), DType::kFloat32) << name;
    Tensor expected = Tensor::empty(w.shape(), DType::kFloat32);
    expected.copy_(state.at(name));
    EXPECT_EQ(testing::max_rel_diff(w, expected), 0.0) << name;
    EXPECT_LT(testing::max_rel_diff(w, gpt_->state_dict().at(name)), 1e-2) << name;
  }
}

TEST_F(CliLanguageModel, ImportListsEveryMissingAndUnexpectedName) {
  auto file = io::load_tensors(path("weights.safetensors"));
  std::map<std::string, Tensor> state = file.tensors;
  state["transformer.h.0.attn.c_atn.weight"] = state.at("transformer.h.0.attn.c_attn.weight");
  state.erase("transformer.h.0.attn.c_attn.weight");
  state.erase("transformer.ln_f.bias");
  io::save_tensors(path("renamed.safetensors"), state);
  const auto r = run_cli("import-weights " + path("renamed.safetensors") + " --config " +
                         path("gpt.yaml") + " -o " + path("bad.safetensors"));
  EXPECT_EQ(r.code, 1) << r.output;
  for (const char* name : {"transformer.h.0.attn.c_attn.weight", "transformer.ln_f.bias",
                           "transformer.h.0.attn.c_atn.weight"}) {
    EXPECT_NE(r.output.find(name), std::string::npos) << name << " not in " << r.output;
  }
  EXPECT_FALSE(fs::exists(path("bad.safetensors")));
}

TEST_F(CliLanguageModel, GenerateEqualsTheLibraryWithAndWithoutTheCache) {
  const std::string model = import_model();
  const std::string prompt = "The ";
  const auto expected = nn::generate(*gpt_, {tokenizer_->encode(prompt)},
                                     {.max_tokens = 12, .temperature = 0.8, .seed = 7});
  for (const std::string cache : {"", " --no-cache"}) {
    const auto r = run_cli("generate " + model + " --prompt \"" + prompt +
                           "\" --max-tokens 12 --temperature 0.8 --seed 7 --json" + cache);
    ASSERT_EQ(r.code, 0) << r.output;
    const auto j = nlohmann::json::parse(r.output.substr(r.output.rfind('{', r.output.find("\"completions\""))));
    EXPECT_EQ(j["completions"][0]["text"].get<std::string>(), tokenizer_->decode(expected.tokens[0]))
        << cache;
    EXPECT_EQ(j["completion_tokens"], 12);
  }
  const auto batch = run_cli("generate " + model + " --prompt a --prompt \"longer one\" --max-tokens 5 "
                             "--temperature 0");
  EXPECT_EQ(batch.code, 0) << batch.output;
  EXPECT_NE(batch.output.find("--- 1 ---"), std::string::npos) << batch.output;
}

TEST_F(CliLanguageModel, PredictWritesTheLogits) {
  const std::string model = import_model();
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  data::write_npy(path("ids.npy"), ids);
  const auto r = run_cli("predict " + model + " --input " + path("ids.npy") + " --output " +
                         path("logits.npy"));
  ASSERT_EQ(r.code, 0) << r.output;
  const Tensor logits = data::read_npy(path("logits.npy"));
  EXPECT_EQ(logits.shape(), (Shape{2, 4, tokenizer_->vocab_size()}));
  EXPECT_LT(testing::max_rel_diff(logits, gpt_->forward(ids)), 1e-5);
}

// A topic classifier on the imported GPT from a config (the form of configs/gpt_fortune_topics.yaml):
// the model file's tokenizer and weights, fine-tuned by `neutrino train`; the saved classifier
// evaluates and summarizes from its file alone.
TEST_F(CliLanguageModel, ClassifierOnThePretrainedGptTrainsFromAConfig) {
  import_model();
  const auto write_config = [&](const std::string& name, const std::string& backbone, int epochs) {
    std::ofstream(path(name))
        << "seed: 3\n"
           "data:\n"
           "  train: {fortunes: [science, love], split: train, stratify: true}\n"
           "  test: {fortunes: [science, love], split: test, stratify: true}\n"
           "  preprocess:\n"
           "    - tokenize: {from_model: lm.safetensors, max_length: 32}\n"
           "model:\n"
           "  input_shape: [32]\n"
           "  layers:\n"
           "    - GPTBackbone: {" << backbone << "}\n"
           "    - Dense: {units: 2, activation: softmax}\n"
           "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
           "fit: {epochs: " << epochs << ", batch_size: 64, verbose: 0}\n";
  };
  write_config("topics.yaml", "from_model: lm.safetensors, pooling: mean", 1);
  const auto r = run_cli("train " + path("topics.yaml") + " -o " + path("topics.safetensors") + " --json");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto scores = nlohmann::json::parse(r.output.substr(r.output.rfind('{')));
  EXPECT_GE(scores["accuracy"].get<double>(), 0.0);
  const auto eval = run_cli("eval " + path("topics.safetensors") +
                            " --data \"{fortunes: [science, love], split: test, stratify: true}\" --json");
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NEAR(nlohmann::json::parse(eval.output.substr(eval.output.rfind('{')))["accuracy"].get<double>(),
              scores["accuracy"].get<double>(), 1e-9);
  const auto summary = run_cli("summary " + path("topics.safetensors"));
  EXPECT_NE(summary.output.find("GPTBackbone"), std::string::npos) << summary.output;

  // Before any step the backbone holds the language model's weights; with pretrained: false, not.
  const auto wte_of = [&](const std::string& file) {
    for (const auto& [name, t] : io::load_tensors(file).tensors) {
      if (name.ends_with("transformer.wte.weight")) return t.to_vector<float>();
    }
    return std::vector<float>{};
  };
  const std::vector<float> lm_wte = wte_of(path("lm.safetensors"));
  ASSERT_FALSE(lm_wte.empty());
  write_config("start.yaml", "from_model: lm.safetensors", 0);
  ASSERT_EQ(run_cli("train " + path("start.yaml") + " -o " + path("start.safetensors")).code, 0);
  EXPECT_EQ(wte_of(path("start.safetensors")), lm_wte);
  write_config("scratch.yaml", "from_model: lm.safetensors, pretrained: false", 0);
  ASSERT_EQ(run_cli("train " + path("scratch.yaml") + " -o " + path("scratch.safetensors")).code, 0);
  const std::vector<float> scratch = wte_of(path("scratch.safetensors"));
  EXPECT_EQ(scratch.size(), lm_wte.size());
  EXPECT_NE(scratch, lm_wte);
}

TEST_F(CliLanguageModel, BadInputIsOneLineAndExitOne) {
  const std::string model = import_model();
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.code, 1) << args << ": " << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << args << ": " << r.output;
  };
  const std::string gen = "generate " + model + " --prompt hi ";
  expect_error(gen + "--max-tokens -1", "max_tokens");
  expect_error(gen + "--max-tokens 1000", "max_tokens");
  expect_error(gen + "--temperature nan", "temperature");
  expect_error(gen + "--temperature -1", "temperature");
  expect_error(gen + "--top-p 2", "top_p");
  expect_error("generate " + model + " --prompt \"\xe4\xbd\xa0\xe5\xa5\xbd\"", "--prompt");
  expect_error("generate " + path("weights.safetensors") + " --prompt hi", "weights.safetensors");
}

}  // namespace
}  // namespace neutrino
