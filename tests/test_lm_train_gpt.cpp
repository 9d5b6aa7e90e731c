// Language-model training on nn::GPT (issue 13): a tiny GPT learns a fortune file, resumes
// bit-identically, and `neutrino train` runs LM configs end to end (--json, --max-steps,
// init_from with freeze, errors naming the field).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "neutrino/core/random.h"
#include "neutrino/data/text_datasets.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/nn/gpt.h"
#include "neutrino/train/language_model.h"
#include "neutrino/train/lm_trainer.h"
#include "lm_test_data.h"
#include "test_util.h"

namespace neutrino {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

class LmTrainGPT : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_temp_dir("lm_train_gpt");
    testing::FortuneShards shards = testing::fortune_shards(dir_);
    tokenizer_ = std::move(shards.tokenizer);
    train_ = std::move(shards.train);
    val_ = std::move(shards.val);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::shared_ptr<nn::GPT> gpt(double dropout, uint64_t seed = 3) {
    Generator g(seed);
    GeneratorGuard guard(g);
    return std::make_shared<nn::GPT>(nn::GPTOptions{.vocab_size = tokenizer_->vocab_size(),
                                                    .context = 32, .layers = 2, .heads = 2,
                                                    .d_model = 32, .dropout = dropout});
  }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name)) << text;
  }

  fs::path dir_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::unique_ptr<data::TokenShard> train_, val_;
};

TEST_F(LmTrainGPT, LossDecreasesOnAFortuneFile) {
  auto m = gpt(0.0);
  const auto r = train::train_language_model(
      *m, *train_, val_.get(),
      {.max_steps = 40, .batch_size = 8, .eval_interval = 20, .eval_steps = 4,
       .learning_rate = 3e-3, .min_lr = 3e-4, .warmup_steps = 5, .verbose = 0});
  ASSERT_EQ(r.history.size(), 2u);
  EXPECT_LT(r.val_loss, std::log(static_cast<double>(tokenizer_->vocab_size())) - 0.7);
  EXPECT_GT(r.mfu, 0);
}

// A 2-layer GPT with dropout, 12 steps straight against the step-6 checkpoint resumed.
TEST_F(LmTrainGPT, ResumeIsBitIdentical) {
  train::LmTrainOptions o{.max_steps = 12, .batch_size = 4, .eval_interval = 6, .eval_steps = 2,
                          .learning_rate = 3e-3, .warmup_steps = 2, .verbose = 0};
  o.checkpoint_path = path("g-{step}.ckpt.safetensors");
  auto straight = gpt(0.1);
  const auto full = train::train_language_model(*straight, *train_, val_.get(), o);
  auto resumed = gpt(0.1, 99);  // other initial weights: the checkpoint's must win
  o.resume_from = path("g-6.ckpt.safetensors");
  o.checkpoint_path = "";
  const auto rest = train::train_language_model(*resumed, *train_, val_.get(), o);
  const auto a = testing::flat_weights(*straight), b = testing::flat_weights(*resumed);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  EXPECT_EQ(rest.train_loss, full.train_loss);
  EXPECT_EQ(rest.val_loss, full.val_loss);
}

constexpr const char* kConfig = R"(seed: 5
data:
  train: {fortunes: [science], split: train}
  validation: {fortunes: [science], split: validation}
  tokenizer: {kind: char}
model:
  GPT: {context: 32, layers: 1, heads: 2, d_model: 16}
train: {max_steps: 8, batch_size: 4, eval_interval: 4, eval_steps: 2, warmup_steps: 2,
        learning_rate: 3.0e-3, min_lr: 3.0e-4}
)";

TEST_F(LmTrainGPT, CliTrainsWritesJsonAndHonoursMaxSteps) {
  write("lm.yaml", kConfig);
  const auto r = run_cli("train " + path("lm.yaml") + " -o " + path("lm.safetensors") +
                         " --json --max-steps 5");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.rfind("\n{") + 1));
  for (const char* key : {"train_loss", "val_loss", "perplexity", "tokens_per_second", "steps"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["steps"], 5);
  const auto loaded = train::load_language_model(path("lm.safetensors"));
  EXPECT_TRUE(loaded.info.extra.count("tokenizer"));
  EXPECT_NE(loaded.info.extra.at("history").find("\"step\":5"), std::string::npos);
  EXPECT_NE(loaded.info.extra.at("training_config").find("GPT"), std::string::npos);

  // Fine-tuning: the model's weights and tokenizer, its first block frozen.
  write("ft.yaml", fmt::format("data:\n  train: {{fortunes: [love], split: train}}\n"
                               "train: {{init_from: {}, max_steps: 3, batch_size: 4, "
                               "eval_interval: 3, eval_steps: 1, warmup_steps: 1, "
                               "freeze: [\"transformer.h.0.*\"]}}\n",
                               path("lm.safetensors")));
  const auto ft = run_cli("train " + path("ft.yaml") + " -o " + path("ft.safetensors") + " --json");
  ASSERT_EQ(ft.code, 0) << ft.output;
  const auto tuned = train::load_language_model(path("ft.safetensors"));
  const auto before = loaded.model->state_dict(), after = tuned.model->state_dict();
  EXPECT_EQ(testing::max_rel_diff(before.at("transformer.h.0.attn.c_attn.weight"),
                                  after.at("transformer.h.0.attn.c_attn.weight")), 0.0);
  EXPECT_GT(testing::max_rel_diff(before.at("transformer.ln_f.weight"),
                                  after.at("transformer.ln_f.weight")), 0.0);
}

TEST_F(LmTrainGPT, BadConfigsNameTheField) {
  auto expect_field = [&](const std::string& text, const std::string& field) {
    write("bad.yaml", text);
    const auto r = run_cli("train " + path("bad.yaml") + " -o " + path("bad.safetensors"));
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find("bad.yaml"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(field), std::string::npos) << field << " not in " << r.output;
  };
  std::string config = kConfig;
  expect_field(config + "bogus: 1\n", "config: unknown field 'bogus'");
  std::string typo = config;
  typo.replace(typo.find("max_steps"), 9, "max_stepz");
  expect_field(typo, "train: unknown field 'max_stepz'");
  std::string negative = config;
  negative.replace(negative.find("max_steps: 8"), 12, "max_steps: -3");
  expect_field(negative, "train.max_steps");
  std::string long_context = config;
  long_context.replace(long_context.find("max_steps: 8"), 12, "max_steps: 8, context: 64");
  expect_field(long_context, "train.context");
  std::string wrong_type = config;
  wrong_type.replace(wrong_type.find("batch_size: 4"), 13, "batch_size: four");
  expect_field(wrong_type, "train.batch_size");
}

}  // namespace
}  // namespace neutrino
