// Language-model training (issue 13): the optimizer's decay mask, the warmup + cosine schedule,
// and train/lm_trainer.h on a small module (a bigram model); the GPT tests are in
// test_lm_train_gpt.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/data/text_datasets.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/nn/init.h"
#include "neutrino/ops/ops.h"
#include "neutrino/optim/optimizer.h"
#include "neutrino/train/callbacks.h"
#include "neutrino/train/lm_trainer.h"
#include "lm_test_data.h"
#include "test_util.h"

namespace neutrino {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

// p' = p (1 - lr wd) - lr m^ / (sqrt(v^) + eps), by hand in double, for the first Adam step.
TEST(DecayMask, AdamWDecaysOnlyFlaggedParameters) {
  const double lr = 0.1, wd = 0.5, eps = 1e-8;
  Tensor a = Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2}).set_requires_grad();
  Tensor b = Tensor::from_vector(std::vector<double>{3.0, 4.0}, {2}).set_requires_grad();
  optim::AdamW opt({.learning_rate = lr, .beta_1 = 0.9, .beta_2 = 0.95, .epsilon = eps,
                    .weight_decay = wd});
  opt.attach({a, b}, {true, false});
  backward(sum(add(mul(a, 0.5), mul(b, b))));  // grads: a 0.5, b 2b
  opt.step();
  auto expected = [&](double p, double g, bool decay) {
    const double m = 0.1 * g / (1 - 0.9), v = 0.05 * g * g / (1 - 0.95);
    return p * (decay ? 1 - lr * wd : 1.0) - lr * m / (std::sqrt(v) + eps);
  };
  testing::expect_values(a, {expected(1.0, 0.5, true), expected(-2.0, 0.5, true)}, 1e-12);
  testing::expect_values(b, {expected(3.0, 6.0, false), expected(4.0, 8.0, false)}, 1e-12);
}

TEST(DecayMask, StateKeepsTheMaskAndRefusesAnother) {
  Tensor a = Tensor::zeros({2}).set_requires_grad(), b = Tensor::zeros({3}).set_requires_grad();
  optim::AdamW opt;
  opt.attach({a, b}, {true, false});
  const auto state = opt.state();
  ASSERT_TRUE(state.count("decay_mask"));
  EXPECT_EQ(state.at("decay_mask").to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  optim::AdamW same;
  same.attach({a, b}, {true, false});
  same.load_state(state);
  optim::AdamW all;  // no mask: every parameter decays, as before masks existed
  all.attach({a, b});
  EXPECT_FALSE(all.state().count("decay_mask"));
  expect_error<ValueError>([&] { all.load_state(state); }, {"decay_mask"});
  expect_error<ValueError>([&] { same.load_state(all.state()); }, {"decay_mask"});
  expect_error<ValueError>([&] { opt.attach({a, b}, {true}); }, {"1 decay flags for 2"});
}

// nanoGPT's get_lr with learning_rate 1e-3, min_lr 1e-4, warmup_iters 10, lr_decay_iters 100.
TEST(WarmupCosine, MatchesNanoGPT) {
  const auto lr = train::warmup_cosine_decay(1e-3, 1e-4, 10, 100);
  auto nano = [](int64_t it) {
    if (it < 10) return 1e-3 * static_cast<double>(it + 1) / 11.0;
    if (it > 100) return 1e-4;
    const double ratio = static_cast<double>(it - 10) / 90.0;
    return 1e-4 + 0.5 * (1.0 + std::cos(M_PI * ratio)) * (1e-3 - 1e-4);
  };
  for (int64_t it : {0, 1, 9, 10, 11, 55, 99, 100, 101, 5000}) {
    EXPECT_NEAR(lr(it), nano(it), 1e-15) << it;
  }
  EXPECT_DOUBLE_EQ(train::warmup_cosine_decay(1e-3, 1e-4, 5, 5)(5), 1e-4);
  expect_error<ValueError>([] { train::warmup_cosine_decay(1e-3, 1e-2, 0, 10); }, {"min_lr"});
  expect_error<ValueError>([] { train::warmup_cosine_decay(1e-3, 0, 10, 5); }, {"warmup_steps"});
}

// A bigram language model: logits = dropout(wte[x]) @ head^T + bias. Small and quick, with
// dropout so that resume has generator state to restore.
class Bigram : public nn::Module {
 public:
  Bigram(int64_t vocab, int64_t d, double dropout) : dropout_(dropout) {
    wte_ = register_parameter("wte.weight", Tensor::zeros({vocab, d}));
    head_ = register_parameter("head.weight", Tensor::zeros({vocab, d}));
    bias_ = register_parameter("head.bias", Tensor::zeros({vocab}));
    nn::initialize(wte_, "glorot_uniform");
    nn::initialize(head_, "glorot_uniform");
  }
  Tensor forward(const Tensor& tokens) override {
    return linear(dropout(embedding(wte_, tokens), dropout_, is_training()), head_, bias_);
  }
  using Module::forward;

 private:
  double dropout_;
  Tensor wte_, head_, bias_;
};

train::LanguageModelSpec bigram_spec(int64_t context) {
  return {.architecture = "{\"class_name\": \"Bigram\"}",
          .context = context,
          .decayed = {"wte.weight", "head.weight"},
          .flops_per_token = [](int64_t) { return 1e3; }};
}

// A fortune file, char-tokenized, as train and validation shards (90/10 by position).
class LmTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_temp_dir("lm_train");
    testing::FortuneShards shards = testing::fortune_shards(dir_);
    tokenizer_ = std::move(shards.tokenizer);
    train_ = std::move(shards.train);
    val_ = std::move(shards.val);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::shared_ptr<Bigram> model(double dropout = 0.0) {
    Generator g(7);
    GeneratorGuard guard(g);
    return std::make_shared<Bigram>(tokenizer_->vocab_size(), 16, dropout);
  }

  fs::path dir_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::unique_ptr<data::TokenShard> train_, val_;
};

TEST_F(LmTrain, LossDecreases) {
  auto m = model();
  const auto r = train::train_language_model(
      *m, bigram_spec(32), *train_, val_.get(),
      {.max_steps = 40, .batch_size = 8, .eval_interval = 10, .eval_steps = 4,
       .learning_rate = 3e-2, .min_lr = 3e-3, .warmup_steps = 5, .verbose = 0});
  ASSERT_EQ(r.history.size(), 4u);
  EXPECT_EQ(r.steps, 40);
  EXPECT_LT(r.history.back().val_loss, r.history.front().val_loss - 0.3);
  EXPECT_LT(r.train_loss, std::log(static_cast<double>(tokenizer_->vocab_size())) - 0.5);
  EXPECT_NEAR(r.perplexity, std::exp(r.val_loss), 1e-9);
  EXPECT_GT(r.tokens_per_second, 0);
  EXPECT_GT(r.mfu, 0);
  EXPECT_NE(train::history_json(r.history).find("\"val_loss\""), std::string::npos);
}

TEST_F(LmTrain, GradAccumulationEqualsOneBigBatch) {
  auto one = model(), two = model();
  const train::LmTrainOptions o{.max_steps = 1, .batch_size = 8, .eval_interval = 1,
                                .eval_steps = 1, .learning_rate = 1e-2, .warmup_steps = 0,
                                .verbose = 0};
  train::LmTrainOptions split = o;
  split.batch_size = 4;
  split.grad_accumulation = 2;
  const auto r1 = train::train_language_model(*one, bigram_spec(16), *train_, nullptr, o);
  const auto r2 = train::train_language_model(*two, bigram_spec(16), *train_, nullptr, split);
  EXPECT_NEAR(r1.train_loss, r2.train_loss, 1e-6);
  EXPECT_TRUE(std::isnan(r1.val_loss));
  const auto a = testing::flat_weights(*one), b = testing::flat_weights(*two);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6) << i;
}

// 12 steps straight, writing a checkpoint at steps 6 and 12, against 6 more steps from the
// step-6 checkpoint in a freshly built model: every weight byte and every loss the same.
TEST_F(LmTrain, ResumeIsBitIdentical) {
  train::LmTrainOptions o{.max_steps = 12, .batch_size = 4, .eval_interval = 6, .eval_steps = 2,
                          .learning_rate = 1e-2, .warmup_steps = 3, .verbose = 0};
  o.checkpoint_path = path("lm-{step}.ckpt.safetensors");
  auto straight = model(0.2);
  const auto full = train::train_language_model(*straight, bigram_spec(16), *train_, val_.get(), o);
  ASSERT_TRUE(fs::exists(path("lm-6.ckpt.safetensors")));
  auto resumed = model(0.2);
  resumed->load_state_dict(model(0.5)->state_dict());  // whatever it holds, the checkpoint wins
  o.resume_from = path("lm-6.ckpt.safetensors");
  o.checkpoint_path = "";
  const auto rest = train::train_language_model(*resumed, bigram_spec(16), *train_, val_.get(), o);
  const auto a = testing::flat_weights(*straight), b = testing::flat_weights(*resumed);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  ASSERT_EQ(rest.history.size(), 2u);
  EXPECT_EQ(rest.steps, 12);
  EXPECT_EQ(rest.history[0].val_loss, full.history[0].val_loss);
  EXPECT_EQ(rest.val_loss, full.val_loss);
  EXPECT_EQ(rest.train_loss, full.train_loss);
  // A checkpoint of another model is refused, naming the file.
  o.resume_from = path("lm-6.ckpt.safetensors");
  auto spec = bigram_spec(16);
  spec.architecture = "{\"class_name\": \"Other\"}";
  expect_error<IOError>([&] { train::train_language_model(*model(), spec, *train_, nullptr, o); },
                        {"lm-6.ckpt.safetensors", "another model"});
}

TEST_F(LmTrain, FrozenParametersStayPut) {
  auto m = model();
  const Tensor before = clone(m->state_dict().at("wte.weight"));
  const auto r = train::train_language_model(
      *m, bigram_spec(16), *train_, nullptr,
      {.max_steps = 3, .batch_size = 4, .eval_interval = 3, .eval_steps = 1, .verbose = 0,
       .freeze = {"wte.*"}});
  EXPECT_EQ(r.steps, 3);
  EXPECT_EQ(testing::max_rel_diff(before, m->state_dict().at("wte.weight")), 0.0);
  expect_error<ValueError>(
      [&] {
        train::train_language_model(*model(), bigram_spec(16), *train_, nullptr,
                                    {.max_steps = 1, .verbose = 0, .freeze = {"nope.*"}});
      },
      {"train.freeze[0]", "nope.*"});
}

TEST_F(LmTrain, OptionErrorsNameTheField) {
  auto m = model();
  auto run = [&](train::LmTrainOptions o) {
    o.verbose = 0;
    train::train_language_model(*m, bigram_spec(16), *train_, nullptr, o);
  };
  expect_error<ValueError>([&] { run({.context = 17}); }, {"train.context", "16"});
  expect_error<ValueError>([&] { run({.max_steps = -1}); }, {"train.max_steps"});
  expect_error<ValueError>([&] { run({.grad_accumulation = 0}); }, {"train.grad_accumulation"});
  expect_error<ValueError>([&] { run({.learning_rate = 1e-3, .min_lr = 1e-2}); }, {"train.min_lr"});
  EXPECT_TRUE(train::matches_any("transformer.h.0.attn.c_attn.weight", {"transformer.h.0.*"}));
  EXPECT_FALSE(train::matches_any("transformer.h.10.ln_1.weight", {"transformer.h.1.*"}));
}

}  // namespace
}  // namespace neutrino
