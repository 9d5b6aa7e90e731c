// nn::GPT (issue 13): nanoGPT's names and shapes, causality, the KV cache against full
// recomputation (greedy and sampled, left-padded batches), language-model files, and the
// generate() option errors.
#include <gtest/gtest.h>

#include <filesystem>

#include "neutrino/autograd/autograd.h"
#include "neutrino/core/error.h"
#include "neutrino/core/random.h"
#include "neutrino/nn/gpt.h"
#include "neutrino/ops/ops.h"
#include "neutrino/train/language_model.h"
#include "test_util.h"

using namespace neutrino;
using neutrino::testing::expect_error;

namespace {

nn::GPTOptions tiny(std::string positions = "learned", std::string mlp = "gelu",
                    std::string norm = "layernorm") {
  return {.vocab_size = 17, .context = 32, .layers = 2, .heads = 2, .d_model = 16,
          .mlp = std::move(mlp), .norm = std::move(norm), .positions = std::move(positions)};
}

std::shared_ptr<nn::GPT> make_gpt(const nn::GPTOptions& o, uint64_t seed = 3) {
  Generator gen(seed);
  GeneratorGuard guard(gen);
  return std::make_shared<nn::GPT>(o);
}

TEST(GPT, HasNanoGptNamesAndLayouts) {
  auto gpt = make_gpt(tiny());
  const auto state = gpt->state_dict();
  EXPECT_EQ(state.at("transformer.wte.weight").shape(), (Shape{17, 16}));
  EXPECT_EQ(state.at("transformer.wpe.weight").shape(), (Shape{32, 16}));
  EXPECT_EQ(state.at("transformer.h.1.attn.c_attn.weight").shape(), (Shape{48, 16}));
  EXPECT_EQ(state.at("transformer.h.1.attn.c_proj.bias").shape(), (Shape{16}));
  EXPECT_EQ(state.at("transformer.h.0.mlp.c_fc.weight").shape(), (Shape{64, 16}));
  EXPECT_EQ(state.at("transformer.h.0.mlp.c_proj.weight").shape(), (Shape{16, 64}));
  EXPECT_EQ(state.at("transformer.ln_f.bias").shape(), (Shape{16}));
  EXPECT_EQ(state.count("lm_head.weight"), 0u);  // tied to wte
  auto untied = tiny();
  untied.tie_embeddings = false;
  EXPECT_EQ(make_gpt(untied)->state_dict().count("lm_head.weight"), 1u);
  auto swiglu = make_gpt(tiny("rope", "swiglu", "rmsnorm"))->state_dict();
  EXPECT_EQ(swiglu.count("transformer.wpe.weight"), 0u);
  EXPECT_EQ(swiglu.count("transformer.h.0.mlp.c_gate.weight"), 1u);
  EXPECT_EQ(swiglu.count("transformer.h.0.ln_1.bias"), 0u);
}

TEST(GPT, LogitsAreCausalAndTrainable) {
  for (const auto& o : {tiny(), tiny("rope", "swiglu", "rmsnorm")}) {
    auto gpt = make_gpt(o);
    gpt->eval();
    const Tensor a = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {1, 6});
    const Tensor b = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 9, 9, 9}, {1, 6});
    const auto la = gpt->forward(a).to_vector<float>(), lb = gpt->forward(b).to_vector<float>();
    ASSERT_EQ(la.size(), 6u * 17u);
    for (size_t i = 0; i < 3 * 17; ++i) EXPECT_NEAR(la[i], lb[i], 1e-6) << o.positions;
    gpt->train();
    const Tensor logits = gpt->forward(a);
    const Tensor loss = softmax_cross_entropy(reshape(slice(logits, 1, 0, 5), {5, 17}),
                                              reshape(slice(a, 1, 1, 6), {5}));
    backward(loss);
    for (const auto& [name, p] : gpt->named_parameters()) {
      EXPECT_TRUE(p.grad().defined()) << name;
    }
  }
}

TEST(GPT, KvCacheGivesTheSameTokensAsRecomputing) {
  for (const auto& o : {tiny(), tiny("rope", "swiglu", "rmsnorm")}) {
    auto gpt = make_gpt(o);
    const std::vector<std::vector<int64_t>> prompts = {{4, 5, 6, 7, 8}, {9, 10}, {11, 12, 13}};
    for (double temperature : {0.0, 0.9}) {
      nn::GenerateOptions opt{.max_tokens = 20, .temperature = temperature, .top_k = 8,
                              .top_p = 0.95, .seed = 7};
      const auto cached = nn::generate(*gpt, prompts, opt);
      opt.use_cache = false;
      const auto full = nn::generate(*gpt, prompts, opt);
      EXPECT_EQ(cached.tokens, full.tokens) << o.positions << " T=" << temperature;
      EXPECT_EQ(cached.tokens[0].size(), 20u);
    }
    // A row of a padded batch generates what it generates alone.
    nn::GenerateOptions greedy{.max_tokens = 10, .temperature = 0};
    const auto batch = nn::generate(*gpt, prompts, greedy);
    const auto alone = nn::generate(*gpt, {prompts[1]}, greedy);
    EXPECT_EQ(batch.tokens[1], alone.tokens[0]) << o.positions;
  }
}

TEST(GPT, GenerateRefusesBadOptionsNamingThem) {
  auto gpt = make_gpt(tiny());
  const std::vector<std::vector<int64_t>> p = {{1, 2}};
  expect_error<ValueError>([&] { nn::generate(*gpt, p, {.max_tokens = -1}); }, {"max_tokens"});
  expect_error<ValueError>([&] { nn::generate(*gpt, p, {.max_tokens = 40}); }, {"max_tokens"});
  expect_error<ValueError>([&] { nn::generate(*gpt, p, {.max_tokens = 5, .temperature = std::nan("")}); },
                           {"temperature"});
  expect_error<ValueError>([&] { nn::generate(*gpt, p, {.max_tokens = 5, .temperature = -1}); }, {"temperature"});
  expect_error<ValueError>([&] { nn::generate(*gpt, p, {.max_tokens = 5, .top_p = 2}); }, {"top_p"});
  expect_error<ValueError>([&] { nn::generate(*gpt, {{1, 99}}, {.max_tokens = 5}); }, {"token 99"});
  const std::vector<std::vector<int64_t>> long_prompt = {std::vector<int64_t>(30, 1)};
  expect_error<ValueError>([&] { nn::generate(*gpt, long_prompt, {.max_tokens = 5}); },
                           {"context", "truncate"});
  const auto cut = nn::generate(*gpt, long_prompt, {.max_tokens = 5, .truncate_prompt = true});
  EXPECT_EQ(cut.tokens[0].size(), 5u);
  EXPECT_EQ(cut.prompt_tokens, 27);
}

TEST(GPT, StopSequencesEndARow) {
  auto gpt = make_gpt(tiny());
  const auto free = nn::generate(*gpt, {{3, 4}}, {.max_tokens = 12, .temperature = 0});
  const std::vector<int64_t> stop = {free.tokens[0][4]};
  const auto stopped = nn::generate(*gpt, {{3, 4}}, {.max_tokens = 12, .temperature = 0, .stop = {stop}});
  EXPECT_EQ(stopped.finish_reason[0], "stop");
  EXPECT_LE(stopped.tokens[0].size(), 4u);
}

TEST(GPT, LanguageModelFilesRoundTripAndRefuseOtherModels) {
  const auto dir = std::filesystem::temp_directory_path() / "neutrino_test_gpt";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "lm.safetensors").string();
  auto gpt = make_gpt(tiny("rope", "swiglu", "rmsnorm"));
  train::save_language_model(path, *gpt, {});
  EXPECT_TRUE(train::is_language_model_file(path));
  const auto loaded = train::load_language_model(path);
  EXPECT_EQ(loaded.model->options().positions, "rope");
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 5, 9}, {1, 3});
  gpt->eval();
  EXPECT_EQ(gpt->forward(ids).to_vector<float>(), loaded.model->forward(ids).to_vector<float>());
  // A PyTorch state dict lists a tied head twice and keeps nanoGPT's mask buffers.
  auto state = gpt->state_dict();
  state["lm_head.weight"] = state.at("transformer.wte.weight");
  state["transformer.h.0.attn.bias"] = Tensor::ones({1, 1, 32, 32});
  auto adapted = train::adapt_imported_state(gpt->options(), state, "w.safetensors");
  EXPECT_EQ(adapted.size(), gpt->state_dict().size());
  state["lm_head.weight"] = Tensor::zeros({17, 16});
  expect_error<ValueError>([&] { train::adapt_imported_state(gpt->options(), state, "w.safetensors"); },
                           {"lm_head.weight", "tie"});
  std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

// The fused attention against its composite reference, forward and every gradient, on a causal
// block of queries after earlier keys (Tq < Tk) under a key padding mask, with key and value
// views that are not contiguous (as the KV cache hands them over).
TEST(FusedAttention, MatchesTheCompositeForwardAndBackward) {
  Generator gen(11);
  GeneratorGuard guard(gen);
  const int64_t b = 2, h = 3, tq = 37, tk = 45, d = 16;
  Tensor q = Tensor::normal({b, h, tq, d}).set_requires_grad();
  const Tensor kv = Tensor::normal({tk, b, h, 2 * d});
  const Tensor k0 = permute(slice(kv, 3, 0, d), {1, 2, 0, 3});
  const Tensor v0 = permute(slice(kv, 3, d, 2 * d), {1, 2, 0, 3});
  std::vector<int64_t> pads = {0, 5};
  const Tensor mask = greater_equal(
      reshape(arange(0, static_cast<double>(tk), 1, DType::kInt64), {1, 1, 1, tk}),
      Tensor::from_vector(pads, {b, 1, 1, 1}));
  const Tensor gy = Tensor::normal({b, h, tq, d});
  std::vector<std::vector<float>> results[2];
  for (int fused = 0; fused < 2; ++fused) {
    const Tensor k = contiguous(k0).detach().set_requires_grad();
    const Tensor v = contiguous(v0).detach().set_requires_grad();
    q.zero_grad();
    const AttentionOptions opt{.causal = true};
    const Tensor y = fused ? scaled_dot_product_attention(q, k, v, mask, opt)
                           : scaled_dot_product_attention_composite(q, k, v, mask, opt);
    backward(sum(mul(y, gy)));
    results[fused] = {y.to_vector<float>(), q.grad().to_vector<float>(), k.grad().to_vector<float>(),
                      v.grad().to_vector<float>()};
  }
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_EQ(results[0][i].size(), results[1][i].size());
    double worst = 0;
    for (size_t j = 0; j < results[0][i].size(); ++j) {
      worst = std::max(worst, std::abs(double(results[0][i][j]) - results[1][i][j]));
    }
    EXPECT_LT(worst, 1e-5) << "output/grad " << i;
  }
  // Strided views give what contiguous copies give.
  NoGradGuard no_grad;
  const Tensor ys = scaled_dot_product_attention(q, k0, v0, mask, {.causal = true});
  const Tensor yc = scaled_dot_product_attention(q, contiguous(k0), contiguous(v0), mask, {.causal = true});
  EXPECT_EQ(ys.to_vector<float>(), yc.to_vector<float>());
}

}  // namespace
