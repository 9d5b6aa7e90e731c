// LoRA fine-tuning (issue 13 item 4, nn/lora.h): fresh adapters change nothing, only the adapters
// train (the base stays bit-identical) and the loss falls, a merged model gives the unmerged one's
// logits within 1e-5, adapter files are small and round-trip (another base is refused), and
// `neutrino train` / `generate --adapter` run it end to end with errors naming the config field.
// The gradient of the LoRA linear itself is checked in test_gradcheck.cpp (GradcheckComposite).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/data/token_shards.h"
#include "neutrino/data/tokenizer.h"
#include "neutrino/nn/gpt.h"
#include "neutrino/ops/ops.h"
#include "neutrino/train/language_model.h"
#include "neutrino/train/lm_trainer.h"
#include "neutrino/train/lora_adapter.h"
#include "lm_test_data.h"
#include "test_util.h"

namespace neutrino {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

// The weights that are not adapters, as flat floats by name.
std::map<std::string, std::vector<float>> base_weights(const nn::GPT& m) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : m.state_dict()) {
    if (name.find(".lora_") == std::string::npos) out[name] = values(t);
  }
  return out;
}

class Lora : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_temp_dir("lora");
    testing::FortuneShards shards = testing::fortune_shards(dir_);
    tokenizer_ = std::move(shards.tokenizer);
    train_ = std::move(shards.train);
    val_ = std::move(shards.val);
    const auto& t = shards.tokens;
    tokens_ = Tensor::from_vector(std::vector<int64_t>(t.begin(), t.begin() + 40), {2, 20});
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::shared_ptr<nn::GPT> gpt(uint64_t seed = 3, int64_t d_model = 32, std::string mlp = "gelu") {
    Generator g(seed);
    GeneratorGuard guard(g);
    auto m = std::make_shared<nn::GPT>(nn::GPTOptions{.vocab_size = tokenizer_->vocab_size(),
                                                      .context = 32, .layers = 2, .heads = 2,
                                                      .d_model = d_model, .mlp = mlp});
    m->eval();
    return m;
  }
  Tensor logits(nn::GPT& m) const {
    NoGradGuard no_grad;
    return m.forward(tokens_);
  }
  train::LmTrainResult train(nn::GPT& m, int64_t steps = 30) const { return train(m, *train_, steps); }
  train::LmTrainResult train(nn::GPT& m, const data::TokenShard& shard, int64_t steps,
                             double lr = 1e-2) const {
    Generator g(11);
    GeneratorGuard guard(g);
    return train::train_language_model(
        m, shard, val_.get(),
        {.max_steps = steps, .batch_size = 8, .eval_interval = 10, .eval_steps = 4,
         .learning_rate = lr, .min_lr = lr / 10, .warmup_steps = 3, .weight_decay = 0.0,
         .verbose = 0});
  }

  // Next-token cross-entropy over 8 fixed windows of the shard.
  static double mean_loss(nn::GPT& m, const data::TokenShard& shard) {
    data::TokenWindows windows(shard, 32, 5);
    const Tensor w = windows.next_batch(8);
    NoGradGuard no_grad;
    const Tensor logits = m.forward(contiguous(slice(w, 1, 0, 32)));
    return softmax_cross_entropy(reshape(logits, {8 * 32, logits.size(2)}),
                                 reshape(contiguous(slice(w, 1, 1, 33)), {8 * 32}))
        .item();
  }

  fs::path dir_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::unique_ptr<data::TokenShard> train_, val_;
  Tensor tokens_;
};

TEST_F(Lora, FreshAdaptersChangeNothingAndAreNamedAsPeft) {
  for (const std::string mlp : {"gelu", "swiglu"}) {
    auto m = gpt(3, 32, mlp);
    const std::vector<float> before = values(logits(*m));
    std::vector<std::string> targets{"c_attn", "c_proj"};
    if (mlp == "swiglu") targets.push_back("mlp.c_gate");
    m->enable_lora({.rank = 4, .alpha = 8, .targets = targets});
    EXPECT_EQ(values(logits(*m)), before) << mlp;  // B = 0: exactly the base model
    const auto state = m->lora_state();
    // c_attn, attn.c_proj, mlp.c_proj (c_proj matches both), and c_gate with SwiGLU; 2 layers.
    EXPECT_EQ(state.size(), (mlp == "swiglu" ? 4u : 3u) * 2 * 2) << mlp;
    const Tensor& a = state.at("transformer.h.1.attn.c_attn.lora_A.weight");
    const Tensor& b = state.at("transformer.h.1.attn.c_attn.lora_B.weight");
    EXPECT_EQ(a.shape(), (Shape{4, 32}));
    EXPECT_EQ(b.shape(), (Shape{96, 4}));
    EXPECT_TRUE(state.count("transformer.h.0.mlp.c_proj.lora_A.weight"));
    EXPECT_FALSE(state.count("transformer.h.0.mlp.c_fc.lora_A.weight"));
    // PEFT's init: A Kaiming-uniform within 1/sqrt(in), B zeros.
    for (float v : values(a)) EXPECT_LE(std::abs(v), 1.0 / std::sqrt(32.0));
    for (float v : values(b)) EXPECT_EQ(v, 0.0f);
    for (const auto& [name, p] : m->named_parameters()) {
      EXPECT_EQ(static_cast<const Tensor&>(p).requires_grad(), state.count(name) > 0) << name;
    }
  }
}

// A base pre-trained on science fortunes, fine-tuned on a text it has not seen (one sentence
// over and over): the adapters learn it, the base weights stay bit-identical.
TEST_F(Lora, OnlyTheAdaptersTrainAndTheLossFalls) {
  auto m = gpt();
  train(*m, *train_, 200);  // every weight: the base model
  std::string text;
  for (int i = 0; i < 100; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  data::write_token_shard(path("fox.shard"), tokenizer_->encode(text), tokenizer_->vocab_size());
  const data::TokenShard fox(path("fox.shard"));
  const double base_loss = mean_loss(*m, fox);
  const auto base_before = base_weights(*m);
  const int64_t total_before = m->parameter_count();
  m->enable_lora({.rank = 4, .alpha = 8, .targets = {"c_attn", "c_proj"}});
  int64_t adapter_elements = 0;
  for (const auto& [name, t] : m->lora_state()) adapter_elements += t.numel();
  const auto r = train(*m, fox, 60, 3e-2);
  EXPECT_EQ(base_weights(*m), base_before);  // bit-identical
  for (const auto& [name, t] : m->lora_state()) {
    if (name.find("lora_B") != std::string::npos) {
      EXPECT_GT(testing::max_rel_diff(t, Tensor::zeros(t.shape())), 0.0) << name;
    }
  }
  const double tuned_loss = mean_loss(*m, fox);
  EXPECT_LT(tuned_loss, base_loss - 0.2) << base_loss << " -> " << tuned_loss;
  ASSERT_EQ(r.history.size(), 6u);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  EXPECT_EQ(r.trainable_parameters, adapter_elements);
  EXPECT_EQ(r.total_parameters, total_before + adapter_elements);
  // 2 layers x (c_attn (32 + 96) + attn.c_proj (32 + 32) + mlp.c_proj (128 + 32)) x rank 4.
  EXPECT_EQ(adapter_elements, 2 * (128 + 64 + 160) * 4);
}

// In float64 through the whole model: the gradient of every adapter (through the frozen layers
// above it) against central differences, and no gradient for the base weights.
TEST_F(Lora, AdapterGradientsMatchCentralDifferences) {
  auto m = gpt();
  m->enable_lora({.rank = 2, .alpha = 4, .targets = {"c_attn", "c_proj", "c_fc"}});
  testing::set_dtype(*m, DType::kFloat64);
  Generator g(8);
  GeneratorGuard guard(g);
  for (const auto& [name, t] : m->lora_state()) t.copy_(Tensor::normal(t.shape(), 0, 0.3));
  const Tensor tokens = slice(tokens_, 1, 0, 6);
  const Tensor weights = Tensor::normal({2, 6, tokenizer_->vocab_size()}, 0, 1, DType::kFloat64);
  auto loss = [&] { return sum(mul(m->forward(tokens), weights)); };
  backward(loss());
  NoGradGuard no_grad;
  for (const auto& [name, p] : m->named_parameters()) {
    const Tensor& t = p;
    if (name.find(".lora_") == std::string::npos) {
      EXPECT_FALSE(t.grad().defined()) << name;
      continue;
    }
    ASSERT_TRUE(t.grad().defined()) << name;
    const std::vector<double> grad = t.grad().to_vector<double>();
    Tensor flat = reshape(t, {t.numel()});
    for (int64_t i = 0; i < t.numel(); i += std::max<int64_t>(1, t.numel() / 5)) {
      const double x = flat.to_vector<double>()[static_cast<size_t>(i)];
      constexpr double h = 1e-6;
      slice(flat, 0, i, i + 1).copy_(Tensor::full({1}, x + h, DType::kFloat64));
      const double up = loss().item();
      slice(flat, 0, i, i + 1).copy_(Tensor::full({1}, x - h, DType::kFloat64));
      const double down = loss().item();
      slice(flat, 0, i, i + 1).copy_(Tensor::full({1}, x, DType::kFloat64));
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(grad[static_cast<size_t>(i)], numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
          << name << "[" << i << "]";
    }
  }
}

TEST_F(Lora, MergedOutputsEqualUnmergedWithin1e5) {
  auto m = gpt();
  m->enable_lora({.rank = 8, .alpha = 16, .dropout = 0.1, .targets = {"c_attn", "c_proj", "c_fc"}});
  train(*m, 20);
  const Tensor unmerged = logits(*m);
  const auto names_with_lora = m->state_dict().size();
  m->merge_lora();
  EXPECT_FALSE(m->lora_options().has_value());
  EXPECT_TRUE(m->lora_state().empty());
  EXPECT_EQ(m->state_dict().size(), gpt()->state_dict().size());
  EXPECT_LT(m->state_dict().size(), names_with_lora);
  for (const auto& [name, p] : m->named_parameters()) {
    EXPECT_TRUE(static_cast<const Tensor&>(p).requires_grad()) << name;
  }
  const Tensor merged = logits(*m);
  double worst = 0;
  const auto x = values(unmerged), y = values(merged);
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, double(std::abs(x[i] - y[i])));
  EXPECT_LT(worst, 1e-5);
  EXPECT_GT(testing::max_rel_diff(merged, logits(*gpt())), 1e-3);  // the adapters did something
  // A merged model saves and loads as an ordinary one.
  train::save_language_model(path("merged.safetensors"), *m);
  EXPECT_EQ(values(logits(*train::load_language_model(path("merged.safetensors")).model)),
            values(merged));
}

TEST_F(Lora, AdapterFilesAreSmallRoundTripAndRefuseAnotherBase) {
  auto base = gpt();
  train::save_language_model(path("base.safetensors"), *base);
  auto m = gpt();
  m->enable_lora({.rank = 2, .alpha = 4, .targets = {"c_attn"}});
  train(*m, 10);
  const Tensor expected = logits(*m);
  EXPECT_THROW(train::save_language_model(path("x.safetensors"), *m), ValueError);
  train::save_lora_adapter(path("adapter.safetensors"), *m,
                           {.extra = {{"base_model", path("base.safetensors")}}});
  const auto adapter_bytes = fs::file_size(path("adapter.safetensors"));
  const auto model_bytes = fs::file_size(path("base.safetensors"));
  EXPECT_LT(adapter_bytes * 10, model_bytes) << adapter_bytes << " vs " << model_bytes;

  const train::LoraAdapterFile file = train::read_lora_adapter(path("adapter.safetensors"));
  EXPECT_EQ(file.options.rank, 2);
  EXPECT_EQ(file.options.targets, std::vector<std::string>{"c_attn"});
  EXPECT_EQ(file.weights.size(), 4u);
  EXPECT_EQ(file.info.extra.at("base_model"), path("base.safetensors"));
  EXPECT_TRUE(train::is_lora_adapter_file(path("adapter.safetensors")));
  EXPECT_FALSE(train::is_lora_adapter_file(path("base.safetensors")));

  auto loaded = train::load_language_model(path("base.safetensors")).model;
  EXPECT_EQ(train::apply_lora_adapter(*loaded, file, "adapter.safetensors"),
            train::BaseCheck::kSameWeights);
  EXPECT_EQ(values(logits(*loaded)), values(expected));

  auto other_weights = gpt(99);
  EXPECT_EQ(train::apply_lora_adapter(*other_weights, file, "adapter.safetensors"),
            train::BaseCheck::kOtherWeights);
  auto wider = gpt(3, 64);
  testing::expect_error<ValueError>(
      [&] { train::apply_lora_adapter(*wider, file, "adapter.safetensors"); },
      {"adapter.safetensors", "another base model", "d_model 32 (the base has 64)"});
  EXPECT_FALSE(wider->lora_options().has_value());
  testing::expect_error<ValueError>(
      [&] { train::load_language_model(path("adapter.safetensors")); },
      {"is a LoRA adapter", "--adapter"});
}

// A LoRA run's checkpoint (base and adapters, the adapters' optimizer state) resumes
// bit-identically into a model whose fresh adapters were drawn differently.
TEST_F(Lora, ResumeIsBitIdentical) {
  const nn::LoraOptions lora{.rank = 4, .alpha = 8, .dropout = 0.1, .targets = {"c_attn"}};
  train::LmTrainOptions o{.max_steps = 12, .batch_size = 4, .eval_interval = 6, .eval_steps = 2,
                          .learning_rate = 1e-2, .warmup_steps = 2, .verbose = 0};
  o.checkpoint_path = path("l-{step}.ckpt.safetensors");
  auto straight = gpt();
  straight->enable_lora(lora);
  const auto full = train::train_language_model(*straight, *train_, val_.get(), o);
  auto resumed = gpt();
  {
    Generator g(123);
    GeneratorGuard guard(g);
    resumed->enable_lora(lora);
  }
  o.resume_from = path("l-6.ckpt.safetensors");
  o.checkpoint_path = "";
  const auto rest = train::train_language_model(*resumed, *train_, val_.get(), o);
  EXPECT_EQ(testing::flat_weights(*resumed), testing::flat_weights(*straight));
  EXPECT_EQ(rest.val_loss, full.val_loss);
}

TEST_F(Lora, BadOptionsNameTheField) {
  auto m = gpt();
  testing::expect_error<ValueError>([&] { m->enable_lora({.targets = {"c_attn", "c_atn"}}); },
                                    {"lora.targets[1]", "'c_atn'", "attn.c_attn", "mlp.c_fc",
                                     "mlp.c_proj"});
  EXPECT_FALSE(m->lora_options().has_value());
  testing::expect_error<ValueError>([&] { m->enable_lora({.rank = 0}); }, {"lora.rank"});
  testing::expect_error<ValueError>([&] { m->enable_lora({.alpha = 0}); }, {"lora.alpha"});
  testing::expect_error<ValueError>([&] { m->enable_lora({.dropout = 1}); }, {"lora.dropout"});
  testing::expect_error<ValueError>([&] { m->enable_lora({.targets = {}}); }, {"lora.targets"});
  m->enable_lora({.targets = {"transformer.h.1.*"}});  // a glob: every Linear of block 1
  EXPECT_EQ(m->lora_state().size(), 4u * 2);
  testing::expect_error<ValueError>([&] { m->enable_lora({}); }, {"already"});
}

constexpr const char* kBaseConfig = R"(seed: 5
data:
  train: {fortunes: [science], split: train}
  validation: {fortunes: [science], split: validation}
  tokenizer: {kind: char}
model:
  GPT: {context: 32, layers: 2, heads: 2, d_model: 32}
train: {max_steps: 40, batch_size: 8, eval_interval: 20, eval_steps: 2, warmup_steps: 2,
        learning_rate: 3.0e-3, min_lr: 3.0e-4}
)";

std::string lora_config(const std::string& base, const std::string& lora) {
  return fmt::format("seed: 7\n"
                     "data:\n  train: {{fortunes: [love], split: train}}\n"
                     "  validation: {{fortunes: [love], split: validation}}\n"
                     "train: {{init_from: {}, max_steps: 8, batch_size: 4, eval_interval: 4, "
                     "eval_steps: 2, warmup_steps: 1, learning_rate: 1.0e-2, min_lr: 1.0e-3}}\n"
                     "lora: {}\n",
                     base, lora);
}

nlohmann::json last_json(const std::string& output) {
  return nlohmann::json::parse(output.substr(output.rfind('{', output.find("\"history\""))));
}

TEST_F(Lora, CliTrainsSavesAdaptersOrMergesAndGenerates) {
  std::ofstream(path("base.yaml")) << kBaseConfig;
  const auto base = run_cli("train " + path("base.yaml") + " -o " + path("base.safetensors") + " --json");
  ASSERT_EQ(base.code, 0) << base.output;
  const std::string lora = "{rank: 4, alpha: 8, dropout: 0.1, targets: [c_attn, c_proj]}";
  std::ofstream(path("lora.yaml")) << lora_config(path("base.safetensors"), lora);

  // The log says what trains and what was saved.
  const auto log = run_cli("train " + path("lora.yaml") + " -o " + path("adapter.safetensors"));
  ASSERT_EQ(log.code, 0) << log.output;
  EXPECT_NE(log.output.find("trainable params: 2816 || all params: "), std::string::npos)
      << log.output;
  EXPECT_NE(log.output.find("saved LoRA adapter " + path("adapter.safetensors")), std::string::npos)
      << log.output;

  const auto adapter = run_cli("train " + path("lora.yaml") + " -o " + path("adapter.safetensors") +
                               " --json");
  ASSERT_EQ(adapter.code, 0) << adapter.output;
  const auto a = last_json(adapter.output);
  EXPECT_EQ(a["trainable_parameters"], 2 * ((32 + 96) + (32 + 32) + (128 + 32)) * 4);
  EXPECT_GT(a["total_parameters"].get<int64_t>(), 10 * a["trainable_parameters"].get<int64_t>());
  EXPECT_EQ(a["merged"], false);
  EXPECT_EQ(a["adapter_bytes"].get<uintmax_t>(), fs::file_size(path("adapter.safetensors")));
  EXPECT_LT(a["adapter_bytes"].get<uintmax_t>() * 5, fs::file_size(path("base.safetensors")));

  const auto merged = run_cli("train " + path("lora.yaml") + " -o " + path("merged.safetensors") +
                              " --json --merge");
  ASSERT_EQ(merged.code, 0) << merged.output;
  const auto j = last_json(merged.output);
  EXPECT_EQ(j["merged"], true);
  EXPECT_FALSE(j.contains("adapter_bytes"));
  EXPECT_EQ(j["val_loss"], a["val_loss"]);  // the same run, saved the other way

  // Greedy generation: the merged model and base + adapter give the same tokens.
  auto text = [](const testing::CliResult& r) {
    EXPECT_EQ(r.code, 0) << r.output;
    return nlohmann::json::parse(r.output.substr(r.output.find('{')))["completions"][0]["text"]
        .get<std::string>();
  };
  const std::string with_adapter = path("base.safetensors") + " --adapter " + path("adapter.safetensors");
  for (const std::string sampling : {"--temperature 0", "--temperature 1 --seed 3"}) {
    const std::string args = " --prompt \"The \" --max-tokens 24 --json " + sampling;
    const std::string from_merged = text(run_cli("generate " + path("merged.safetensors") + args));
    EXPECT_EQ(from_merged, text(run_cli("generate " + with_adapter + args))) << sampling;
    EXPECT_EQ(from_merged, text(run_cli("generate " + with_adapter + " --no-cache" + args))) << sampling;
    if (sampling != "--temperature 0") {  // the adapters change the model
      EXPECT_NE(from_merged, text(run_cli("generate " + path("base.safetensors") + args)));
    }
  }
  const std::string args = " --prompt hi --max-tokens 4";

  // An adapter is no model, and a base of another shape is refused.
  const auto alone = run_cli("generate " + path("adapter.safetensors") + args);
  EXPECT_EQ(alone.code, 1) << alone.output;
  EXPECT_NE(alone.output.find("--adapter"), std::string::npos) << alone.output;
  std::string wide = kBaseConfig;
  wide.replace(wide.find("d_model: 32"), 11, "d_model: 48");
  std::ofstream(path("wide.yaml")) << wide;
  ASSERT_EQ(run_cli("train " + path("wide.yaml") + " -o " + path("wide.safetensors") + " --json").code, 0);
  const auto mismatch = run_cli("generate " + path("wide.safetensors") + " --adapter " +
                                path("adapter.safetensors") + args);
  EXPECT_EQ(mismatch.code, 1) << mismatch.output;
  EXPECT_NE(mismatch.output.find("d_model 32 (the base has 48)"), std::string::npos) << mismatch.output;
}

TEST_F(Lora, BadConfigsNameTheField) {
  std::ofstream(path("base.yaml")) << kBaseConfig;
  ASSERT_EQ(run_cli("train " + path("base.yaml") + " -o " + path("base.safetensors") + " --json").code, 0);
  auto expect_field = [&](const std::string& text, const std::string& field,
                          const std::string& flags = "") {
    std::ofstream(path("bad.yaml")) << text;
    const auto r = run_cli("train " + path("bad.yaml") + " -o " + path("bad.safetensors") + flags);
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find("bad.yaml"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(field), std::string::npos) << field << " not in " << r.output;
    EXPECT_FALSE(fs::exists(path("bad.safetensors")));
  };
  const std::string b = path("base.safetensors");
  expect_field(lora_config(b, "{rank: 0}"), "lora.rank");
  expect_field(lora_config(b, "{alpha: 0}"), "lora.alpha");
  expect_field(lora_config(b, "{alpha: -1}"), "lora.alpha");
  expect_field(lora_config(b, "{dropout: 1.0}"), "lora.dropout");
  expect_field(lora_config(b, "{dropout: -0.1}"), "lora.dropout");
  expect_field(lora_config(b, "{targets: []}"), "lora.targets");
  expect_field(lora_config(b, "{targets: [c_attn, qkv]}"), "lora.targets[1]: 'qkv' matches no Linear");
  expect_field(lora_config(b, "{rnk: 4}"), "lora: unknown field 'rnk'");
  expect_field(lora_config(b, "{merge: yes please}"), "lora.merge");
  std::string scratch = kBaseConfig;
  expect_field(scratch + "lora: {rank: 4}\n", "train.init_from");
  expect_field(scratch, "--merge", " --merge");
}

}  // namespace
}  // namespace neutrino
